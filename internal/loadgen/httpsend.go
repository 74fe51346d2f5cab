package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// httpClient posts to the collector's HTTP API with the bearer token and
// retries what the collector asks to be retried.
type httpClient struct {
	base        string
	token       string
	hc          *http.Client
	maxAttempts int
	// sleep waits between attempts; tests replace it to stay fast.
	sleep func(ctx context.Context, d time.Duration) error
}

func newHTTPClient(cfg *Config) *httpClient {
	return &httpClient{
		base:        strings.TrimRight(cfg.Target, "/"),
		token:       cfg.Token,
		hc:          &http.Client{Timeout: cfg.RequestTimeout},
		maxAttempts: cfg.MaxAttempts,
		sleep:       sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// body is one encoded request body.
type body struct {
	contentType string
	encoding    string // "", gzip or zstd
	data        []byte
}

// answer is the collector's final reply to one request.
type answer struct {
	status  int
	body    []byte
	retries int
}

// post sends b to path. It retries 503 and 429 (waiting Retry-After when
// given, else an exponential backoff) and connection errors, up to
// maxAttempts. Any other status is returned as is; err is set only when no
// final answer came.
func (h *httpClient) post(ctx context.Context, path string, b body) (answer, error) {
	var a answer
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, bytes.NewReader(b.data))
		if err != nil {
			return a, fmt.Errorf("build request: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+h.token)
		req.Header.Set("Content-Type", b.contentType)
		if b.encoding != "" {
			req.Header.Set("Content-Encoding", b.encoding)
		}
		req.Header.Set("User-Agent", "tokenmeter-loadgen")
		resp, err := h.hc.Do(req)
		wait := backoff
		if err == nil {
			a.status = resp.StatusCode
			a.body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if err == nil && a.status != http.StatusServiceUnavailable && a.status != http.StatusTooManyRequests {
				return a, nil
			}
			if err == nil {
				err = fmt.Errorf("HTTP %d: %s", a.status, firstLine(a.body))
				if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
					wait = d
				}
			}
		}
		if ctx.Err() != nil {
			return a, ctx.Err()
		}
		if attempt >= h.maxAttempts {
			return a, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		if err := h.sleep(ctx, wait); err != nil {
			return a, err
		}
		a.retries++
		backoff = min(2*backoff, 5*time.Second)
	}
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, 30*time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), 30*time.Second), true
	}
	return 0, false
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// probe checks that the target answers HTTP at all (any status will do).
func (h *httpClient) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			return fmt.Errorf("target %s is unreachable: %w", h.base, ue.Unwrap())
		}
		return fmt.Errorf("target %s is unreachable: %w", h.base, err)
	}
	resp.Body.Close()
	return nil
}

// itemVerdicts reads a collector answer for a request of n items and says
// what happened to each. The collector answers 202 with the rejected items
// listed by index in "errors", 400 with the same list when no item was
// valid, and any other 4xx for the request as a whole (every item rejected
// with its "error" reason).
func itemVerdicts(a answer, n int) []result {
	out := make([]result, n)
	// The collector's IngestResponse ({"accepted":n,"rejected":n,"errors":[...]})
	// or ErrorResponse ({"error":reason,"message":...}).
	var reply struct {
		Errors  []rejectedItem `json:"errors"`
		Error   string         `json:"error"`
		Message string         `json:"message"`
	}
	_ = json.Unmarshal(a.body, &reply) // an unreadable body leaves the list empty
	listed := reply.Errors
	switch {
	case a.status >= 200 && a.status < 300:
		for i := range out {
			out[i].accepted = true
		}
	case a.status >= 400 && a.status < 500 && len(listed) == 0:
		reason := fmt.Sprintf("HTTP %d", a.status)
		for _, s := range []string{reply.Error, reply.Message} {
			if s != "" {
				reason += " " + s
				break
			}
		}
		for i := range out {
			out[i].reason = reason
		}
		return out
	case a.status >= 400 && a.status < 500:
		// Items not listed were valid but, as the request failed as a whole, not accepted.
		for i := range out {
			out[i].failed = true
		}
	default:
		for i := range out {
			out[i].failed = true
		}
		return out
	}
	for _, r := range listed {
		if r.Index < 0 || r.Index >= n {
			continue
		}
		out[r.Index] = result{reason: r.describe()}
	}
	return out
}

// rejectedItem is one entry of the collector's list of rejected items.
type rejectedItem struct {
	Index    int    `json:"index"`
	Reason   string `json:"reason"`
	Field    string `json:"field"`
	Problems []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"problems"`
}

// describe is "reason (field, field)": the reason and the fields at fault,
// without per-item numbers, so equal rejections group in the summary.
func (r rejectedItem) describe() string {
	fields := []string{}
	if r.Field != "" {
		fields = append(fields, r.Field)
	}
	for _, p := range r.Problems {
		if p.Field != "" {
			fields = append(fields, p.Field)
		}
	}
	reason := r.Reason
	if reason == "" {
		reason = "rejected"
	}
	if len(fields) > 0 {
		reason += " (" + strings.Join(fields, ", ") + ")"
	}
	return reason
}

// Body encodings the JSON paths rotate through, so every decoder of the
// collector sees traffic.
const (
	encArray = iota
	encNDJSON
	encArrayGzip
	encCloudEvents
	encNDJSONZstd
	encCloudEventsGzip
	numEncodings
)

var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))

// encodeItems encodes JSON items (each one object) in the format chosen by
// seq. One item goes as a plain object. ceType and ceSource are the
// CloudEvents type and source; ids are the items' CloudEvent ids.
func encodeItems(seq int, items [][]byte, ids []string, ceType, ceSource string) (body, error) {
	if len(items) == 1 {
		if seq%numEncodings == encCloudEvents {
			ce, err := json.Marshal(map[string]any{
				"specversion": "1.0", "id": ids[0], "source": ceSource, "type": ceType,
				"datacontenttype": "application/json", "data": json.RawMessage(items[0]),
			})
			return body{contentType: "application/cloudevents+json", data: ce}, err
		}
		return body{contentType: "application/json", data: items[0]}, nil
	}
	var buf bytes.Buffer
	b := body{contentType: "application/json"}
	kind := seq % numEncodings
	switch kind {
	case encArray, encArrayGzip:
		buf.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(it)
		}
		buf.WriteByte(']')
	case encNDJSON, encNDJSONZstd:
		b.contentType = "application/x-ndjson"
		for _, it := range items {
			buf.Write(it)
			buf.WriteByte('\n')
		}
	case encCloudEvents, encCloudEventsGzip:
		b.contentType = "application/cloudevents-batch+json"
		buf.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				buf.WriteByte(',')
			}
			ce, err := json.Marshal(map[string]any{
				"specversion": "1.0", "id": ids[i], "source": ceSource, "type": ceType,
				"datacontenttype": "application/json", "data": json.RawMessage(it),
			})
			if err != nil {
				return b, fmt.Errorf("cloudevent: %w", err)
			}
			buf.Write(ce)
		}
		buf.WriteByte(']')
	}
	b.data = buf.Bytes()
	switch kind {
	case encArrayGzip, encCloudEventsGzip:
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		if _, err := zw.Write(b.data); err != nil {
			return b, fmt.Errorf("gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return b, fmt.Errorf("gzip: %w", err)
		}
		b.data, b.encoding = z.Bytes(), "gzip"
	case encNDJSONZstd:
		b.data, b.encoding = zstdEncoder.EncodeAll(b.data, nil), "zstd"
	}
	return b, nil
}
