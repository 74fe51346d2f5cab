package collector

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/httpx"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	segjson "github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// IngestResponse is the body of a 202 (and of a 400 where no item was valid):
// how many events were accepted and, for each rejected item, its index in
// the body (0-based, counting array elements, NDJSON lines or CloudEvents),
// its id when it had one, and every problem with its field path.
type IngestResponse struct {
	Accepted int             `json:"accepted"`
	Rejected int             `json:"rejected"`
	Errors   []ItemRejection `json:"errors,omitempty"`
}

// ItemRejection is one rejected item of a batch.
type ItemRejection struct {
	Index    int                `json:"index"`
	ID       string             `json:"id,omitempty"`
	Reason   string             `json:"reason"`
	Problems []event.FieldError `json:"problems,omitempty"`
}

// ErrorResponse is the body of every other non-2xx answer.
type ErrorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

const (
	kindUsage   = "usage"
	kindOutcome = "outcome"
)

// UsageHandler serves POST /v1/usage.
func (c *Collector) UsageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serveIngest(w, r, kindUsage) })
}

// OutcomesHandler serves POST /v1/outcomes.
func (c *Collector) OutcomesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serveIngest(w, r, kindOutcome) })
}

func (c *Collector) refuse(w http.ResponseWriter, path string, code int, reason, msg string) {
	c.metrics.refuse(path, reason)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", c.retryAfterSeconds())
	}
	if code == http.StatusUnauthorized {
		httpx.Challenge(w, false)
	}
	httpx.WriteJSON(w, code, ErrorResponse{Error: reason, Message: msg})
}

func (c *Collector) serveIngest(w http.ResponseWriter, r *http.Request, kind string) {
	if c.shuttingDown.Load() {
		c.refuse(w, pathHTTP, http.StatusServiceUnavailable, reqShuttingDown, "the collector is shutting down; retry")
		return
	}
	ten, ok := c.authenticate(r.Header.Get("Authorization"))
	if !ok {
		c.refuse(w, pathHTTP, http.StatusUnauthorized, reqUnauthenticated, "missing or unknown bearer token (Authorization: Bearer TOKEN)")
		return
	}
	format, err := ingest.FormatFor(r.Header.Get("Content-Type"))
	if err != nil {
		c.refuse(w, pathHTTP, http.StatusUnsupportedMediaType, reqMediaType, err.Error())
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if code, reason, err := c.readBody(r, buf); err != nil {
		c.refuse(w, pathHTTP, code, reason, err.Error())
		return
	}
	lim := c.deps.Limits.OrDefault()
	items, err := ingest.SplitBodyWithin(format, buf.Bytes(), c.cfg.MaxItems, lim)
	if err != nil {
		var le *limits.Error
		if errors.As(err, &le) {
			c.metrics.breach(pathHTTP, le.Breach)
			c.refuse(w, pathHTTP, http.StatusBadRequest, reqLimit, err.Error())
			return
		}
		if errors.Is(err, ingest.ErrTooManyItems) {
			c.refuse(w, pathHTTP, http.StatusRequestEntityTooLarge, reqTooManyItems, err.Error()+" events in one request (collector.max_items)")
			return
		}
		c.refuse(w, pathHTTP, http.StatusBadRequest, reqUnreadable, err.Error())
		return
	}

	now := c.now()
	// BorrowInput: events point into buf, which outlives them (each is
	// marshalled into values before the next item and buf is released last).
	opts := ingest.Options{Now: now, Tenant: ten.ID, BorrowInput: true, Limits: lim}
	topic := c.deps.Kafka.Topics.Usage
	if kind == kindOutcome {
		topic = c.deps.Kafka.Topics.Outcomes
	}
	recs := make([]kgo.Record, 0, len(items))
	var (
		resp    IngestResponse
		usage   event.UsageEvent
		outcome event.OutcomeEvent
		// values holds every record value of this request back to back: one
		// growing buffer instead of one allocation per event. Earlier values
		// stay valid when it grows (they keep the old array).
		values = make([]byte, 0, len(buf.Bytes())+len(items)*64)
	)
	for i, it := range items {
		var (
			err   error
			id    string
			key   []byte
			value []byte
		)
		if kind == kindUsage {
			err = ingest.DecodeUsageItem(it, opts, &usage)
			id = usage.EventID
			if err == nil {
				key = usage.Key()
				values, value, err = appendJSON(values, &usage)
			}
		} else {
			err = ingest.DecodeOutcomeItem(it, opts, &outcome)
			id = outcome.OutcomeID
			if err == nil {
				key = outcome.Key()
				values, value, err = appendJSON(values, &outcome)
			}
		}
		if err == nil {
			err = checkRecordSize(key, value, lim)
		}
		if err != nil {
			var ie *ingest.ItemError
			if !errors.As(err, &ie) {
				ie = &ingest.ItemError{Reason: ingest.ReasonInvalidField, Problems: []event.FieldError{{Reason: err.Error()}}}
			}
			if ie.Reason == ingest.ReasonTenantMismatch {
				// One foreign tenant refuses the whole request: nothing of it is written.
				// Items rejected before this one were counted under their own reason.
				c.metrics.reject(pathHTTP, kind, ie.Reason, len(items)-len(resp.Errors))
				c.refuse(w, pathHTTP, http.StatusForbidden, reqForbidden,
					fmt.Sprintf("item %d: %s", i, ie.Error()))
				return
			}
			resp.Errors = append(resp.Errors, ItemRejection{Index: i, ID: id, Reason: ie.Reason, Problems: ie.Problems})
			c.metrics.reject(pathHTTP, kind, ie.Reason, 1)
			c.metrics.breaches(pathHTTP, ie.Problems)
			continue
		}
		recs = append(recs, kgo.Record{Topic: topic, Key: key, Value: value})
	}
	resp.Accepted, resp.Rejected = len(recs), len(resp.Errors)
	if len(recs) == 0 {
		c.metrics.refuse(pathHTTP, reqNoValidItems)
		httpx.WriteJSON(w, http.StatusBadRequest, resp)
		return
	}
	ptrs := make([]*kgo.Record, len(recs))
	for i := range recs {
		ptrs[i] = &recs[i]
	}
	if err := c.produce(r.Context(), ptrs, int64(len(values))); err != nil {
		c.refuseProduce(w, pathHTTP, err)
		return
	}
	c.metrics.accept(pathHTTP, kind, len(recs))
	httpx.WriteJSON(w, http.StatusAccepted, resp)
}

// checkRecordSize refuses a record the brokers could refuse: it would be
// answered 503 and retried forever, or, accepted, stall the processor.
func checkRecordSize(key, value []byte, lim limits.Limits) error {
	if n := len(key) + len(value); n > lim.MaxRecordBytes {
		return &ingest.ItemError{Reason: ingest.ReasonLimit, Problems: []event.FieldError{{
			Reason: fmt.Sprintf("the event's record is %d bytes (key + value), over limits.%s (%d)", n, limits.BreachRecord, lim.MaxRecordBytes),
			Limit:  limits.BreachRecord}}}
	}
	return nil
}

// isTooLargeForBroker: the broker refused a record or batch for its size,
// which no retry changes (a 413, never a 503).
func isTooLargeForBroker(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

func (c *Collector) refuseProduce(w http.ResponseWriter, path string, err error) {
	switch {
	case errors.Is(err, errNeverFits), isTooLargeForBroker(err):
		c.refuse(w, path, http.StatusRequestEntityTooLarge, reqTooLarge, err.Error()+"; split the request")
	case errors.Is(err, errBufferFull):
		c.refuse(w, path, http.StatusServiceUnavailable, reqBufferFull, "the broker cannot take more right now; retry after the Retry-After seconds")
	case errors.Is(err, errShuttingDown):
		c.refuse(w, path, http.StatusServiceUnavailable, reqShuttingDown, "the collector is shutting down; retry")
	default:
		c.deps.Logger.Warn("produce failed", "path", path, "err", err)
		c.refuse(w, path, http.StatusServiceUnavailable, reqBrokerError, "the broker did not acknowledge the events; retry (event ids make a retry safe)")
	}
}

// readBody reads the request body into buf, decompressing gzip or zstd, and
// enforces MaxBodyBytes on both the wire and the decompressed size.
func (c *Collector) readBody(r *http.Request, buf *bytes.Buffer) (int, string, error) {
	limit := c.cfg.MaxBodyBytes
	var src io.Reader = http.MaxBytesReader(nil, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return http.StatusBadRequest, reqUnreadable, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	case "zstd":
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)+1))
		if err != nil {
			return http.StatusBadRequest, reqUnreadable, fmt.Errorf("zstd body: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return http.StatusUnsupportedMediaType, reqMediaType, fmt.Errorf("Content-Encoding %q is not supported (use gzip or zstd)", enc)
	}
	n, err := buf.ReadFrom(io.LimitReader(src, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || n > limit:
		return http.StatusRequestEntityTooLarge, reqTooLarge, fmt.Errorf("body is larger than %d bytes (collector.max_body_bytes)", limit)
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
		return http.StatusRequestEntityTooLarge, reqTooLarge, fmt.Errorf("decompressed body is larger than %d bytes (collector.max_body_bytes)", limit)
	case err != nil:
		return http.StatusBadRequest, reqUnreadable, fmt.Errorf("read body: %w", err)
	}
	return 0, "", nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

// maxPooledBuffer: larger request buffers are dropped, not pooled. A pooled
// buffer goes to whichever request comes next, and a slow sender holds its
// buffer until http.read_timeout: pooling 8 MiB buffers let a few hundred
// slow connections after a few large bodies pin gigabytes (issue 17 item 11).
const maxPooledBuffer = 1 << 20

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// canonicalJSON matches encoding/json's output byte for byte (HTML-escaped
// strings, sorted map keys), so every path writes the same canonical form.
const canonicalJSON = segjson.EscapeHTML | segjson.SortMapKeys

// appendJSON appends v's canonical JSON to buf and returns the grown buffer
// and the value's own slice of it.
func appendJSON(buf []byte, v any) ([]byte, []byte, error) {
	start := len(buf)
	buf, err := segjson.Append(buf, v, canonicalJSON)
	if err != nil {
		return buf[:start], nil, err
	}
	return buf, buf[start:len(buf):len(buf)], nil
}
