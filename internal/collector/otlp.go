package collector

import (
	"context"
	"errors"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/httpx"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	segjson "github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters compress with gzip
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tokenmeter/tokenmeter/internal/event"
	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// startOTLP binds the configured OTLP listeners and serves them in the background.
func (c *Collector) startOTLP(fatal chan<- error) error {
	tlsCfg, err := c.serverTLS()
	if err != nil {
		return err
	}
	if addr := *c.cfg.OTLP.GRPCListen; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("collector.otlp.grpc_listen: cannot listen on %s (port in use?): %w", addr, err)
		}
		opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(int(min(c.cfg.MaxBodyBytes, 1<<31-1))),
			grpc.ForceServerCodecV2(depthCodec{delegate: encoding.GetCodecV2("proto"), maxDepth: c.deps.Limits.OrDefault().MaxDepth, m: c.metrics})}
		if tlsCfg != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
		}
		c.grpcSrv = grpc.NewServer(opts...)
		ptraceotlp.RegisterGRPCServer(c.grpcSrv, &traceGRPC{c: c})
		c.OTLPGRPCAddr = ln.Addr().String()
		srv := c.grpcSrv
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				fatal <- fmt.Errorf("collector otlp grpc: %w", err)
			}
		}()
		c.deps.Logger.Info("otlp grpc receiver listening", "addr", c.OTLPGRPCAddr, "tls", tlsCfg != nil)
	}
	if addr := *c.cfg.OTLP.HTTPListen; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("collector.otlp.http_listen: cannot listen on %s (port in use?): %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("POST /v1/traces", c.OTLPHTTPHandler())
		c.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: c.cfg.OTLP.ReadTimeout,
			IdleTimeout: 2 * time.Minute, TLSConfig: tlsCfg,
			ErrorLog: slog.NewLogLogger(c.deps.Logger.Handler(), slog.LevelWarn)}
		c.OTLPHTTPAddr = ln.Addr().String()
		srv := c.httpSrv
		go func() {
			var err error
			if tlsCfg != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				fatal <- fmt.Errorf("collector otlp http: %w", err)
			}
		}()
		c.deps.Logger.Info("otlp http receiver listening", "addr", c.OTLPHTTPAddr, "tls", tlsCfg != nil)
	}
	return nil
}

// stopOTLP stops both listeners, letting in-flight exports finish until ctx ends.
func (c *Collector) stopOTLP(ctx context.Context) {
	if c.httpSrv != nil {
		if err := c.httpSrv.Shutdown(ctx); err != nil {
			_ = c.httpSrv.Close()
		}
	}
	if c.grpcSrv != nil {
		done := make(chan struct{})
		go func() { c.grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			c.grpcSrv.Stop()
			<-done
		}
	}
}

// traceResult is what one OTLP export did.
type traceResult struct {
	accepted, rejected, skipped, duplicates, unmetered int
	message                                            string // first rejections, for partial_success.error_message
}

// maxRejectionDetails bounds the partial-success message.
const maxRejectionDetails = 5

// ingestTraces maps the spans of td to usage events and produces them,
// returning once the broker acknowledged every one.
func (c *Collector) ingestTraces(ctx context.Context, td ptrace.Traces, tenantID, path string) (traceResult, error) {
	var (
		res     traceResult
		recs    []kgo.Record
		details []string
		values  []byte
		mapErr  error
		dlq     int
	)
	topic := c.deps.Kafka.Topics.Usage
	now := c.now()
	c.mapper.MapTraces(td, tenantID, now, func(r *ingest.SpanResult) {
		switch {
		case r.Skipped:
			res.skipped++
		case r.Duplicate:
			res.duplicates++
		case r.Err != nil:
			res.rejected++
			c.metrics.reject(path, kindUsage, r.Err.Reason, 1)
			if len(details) < maxRejectionDetails {
				details = append(details, fmt.Sprintf("span %s: %s", r.Event.EventID, r.Err.Error()))
			}
			// OTLP exporters usually only log a partial success, so the
			// rejected span also goes to the DLQ with its original (as OTLP
			// JSON): never dropped silently (DESIGN.md invariant 6).
			if !c.dlqEnabled {
				return
			}
			rec, err := c.dlqRecord(r, now)
			if err != nil {
				mapErr = err
				return
			}
			recs = append(recs, rec)
			dlq++
		default:
			var (
				v   []byte
				err error
			)
			start := len(values)
			values, v, err = appendJSON(values, &r.Event)
			if err != nil {
				mapErr = err
				return
			}
			if ie := checkRecordSize(r.Event.Key(), v, c.deps.Limits.OrDefault()); ie != nil {
				values = values[:start]
				res.rejected++
				c.metrics.reject(path, kindUsage, ingest.ReasonLimit, 1)
				c.metrics.breach(path, limits.BreachRecord)
				if len(details) < maxRejectionDetails {
					details = append(details, fmt.Sprintf("span %s: %s", r.Event.EventID, ie.Error()))
				}
				return
			}
			recs = append(recs, kgo.Record{Topic: topic, Key: r.Event.Key(), Value: v})
			if r.Event.Unmetered() {
				res.unmetered++
			}
		}
	})
	if mapErr != nil {
		return res, mapErr
	}
	c.metrics.skip(path, res.skipped)
	c.metrics.duplicate(path, res.duplicates)
	if res.rejected > 0 {
		res.message = fmt.Sprintf("%d span(s) rejected: %s", res.rejected, strings.Join(details, "; "))
	}
	ptrs := make([]*kgo.Record, len(recs))
	for i := range recs {
		ptrs[i] = &recs[i]
	}
	if err := c.produce(ctx, ptrs, int64(len(values))); err != nil {
		return res, err
	}
	res.accepted = len(recs) - dlq
	c.metrics.accept(path, kindUsage, res.accepted)
	c.metrics.unmeteredCalls(path, res.unmetered)
	return res, nil
}

// dlqRecord builds the DLQ record of a rejected span: reason, detail and the
// span with its resource and scope as a one-span OTLP/JSON request.
func (c *Collector) dlqRecord(r *ingest.SpanResult, now time.Time) (kgo.Record, error) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	r.Resource.CopyTo(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	r.Scope.CopyTo(ss.Scope())
	r.Span.CopyTo(ss.Spans().AppendEmpty())
	original, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		return kgo.Record{}, fmt.Errorf("dlq original: %w", err)
	}
	ev := &r.Event
	d := event.DLQRecord{
		ID: "otlp:" + ev.EventID, Stage: "collector", Reason: r.Err.Reason, Detail: r.Err.Error(),
		Tenant: ev.Tenant, EventID: ev.EventID, Provider: ev.Provider, Model: ev.Model,
		Partition: -1, Offset: -1, // not read from Kafka
		EventTime: ev.EventTime, RejectedAt: ingest.NormaliseTime(now), Original: original,
	}
	v, err := segjson.Marshal(&d)
	if err != nil {
		return kgo.Record{}, fmt.Errorf("dlq record: %w", err)
	}
	return kgo.Record{Topic: c.deps.Kafka.Topics.DLQ, Key: ev.Key(), Value: v}, nil
}

func exportResponse(res traceResult) ptraceotlp.ExportResponse {
	resp := ptraceotlp.NewExportResponse()
	if res.rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(res.rejected))
		resp.PartialSuccess().SetErrorMessage(res.message)
	}
	return resp
}

// traceGRPC is the OTLP/gRPC TraceService.
type traceGRPC struct {
	ptraceotlp.UnimplementedGRPCServer
	c *Collector
}

// Export implements ptraceotlp.GRPCServer.
func (s *traceGRPC) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	c := s.c
	if c.shuttingDown.Load() {
		c.metrics.refuse(pathOTLPGRPC, reqShuttingDown)
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "the collector is shutting down; retry")
	}
	var auth string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			auth = v[0]
		}
	}
	ten, ok := c.authenticate(auth)
	if !ok {
		c.metrics.refuse(pathOTLPGRPC, reqUnauthenticated)
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unauthenticated, "missing or unknown bearer token (authorization: Bearer TOKEN)")
	}
	res, err := c.ingestTraces(ctx, req.Traces(), ten.ID, pathOTLPGRPC)
	if errors.Is(err, errNeverFits) || isTooLargeForBroker(err) {
		c.metrics.refuse(pathOTLPGRPC, reqTooLarge)
		return ptraceotlp.NewExportResponse(), status.Error(codes.InvalidArgument, err.Error()+"; export smaller batches")
	}
	if err != nil {
		reason, msg := produceRefusal(err)
		c.metrics.refuse(pathOTLPGRPC, reason)
		// Unavailable is retryable for OTLP exporters; nothing was acknowledged as a whole.
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, msg)
	}
	return exportResponse(res), nil
}

func produceRefusal(err error) (reason, msg string) {
	switch {
	case errors.Is(err, errBufferFull):
		return reqBufferFull, "the broker cannot take more right now; retry"
	case errors.Is(err, errShuttingDown):
		return reqShuttingDown, "the collector is shutting down; retry"
	}
	return reqBrokerError, "the broker did not acknowledge the spans; retry (span ids make a retry safe)"
}

// OTLPHTTPHandler serves OTLP/HTTP POST /v1/traces (application/x-protobuf or application/json).
func (c *Collector) OTLPHTTPHandler() http.Handler {
	return http.HandlerFunc(c.serveOTLPHTTP)
}

func (c *Collector) serveOTLPHTTP(w http.ResponseWriter, r *http.Request) {
	const path = pathOTLPHTTP
	ct := r.Header.Get("Content-Type")
	isJSON := strings.HasPrefix(ct, "application/json")
	if !isJSON && !strings.HasPrefix(ct, "application/x-protobuf") && !strings.HasPrefix(ct, "application/protobuf") {
		c.metrics.refuse(path, reqMediaType)
		writeOTLPStatus(w, http.StatusUnsupportedMediaType, false, codes.InvalidArgument,
			fmt.Sprintf("content type %q is not application/x-protobuf or application/json", ct))
		return
	}
	if c.shuttingDown.Load() {
		c.metrics.refuse(path, reqShuttingDown)
		w.Header().Set("Retry-After", c.retryAfterSeconds())
		writeOTLPStatus(w, http.StatusServiceUnavailable, isJSON, codes.Unavailable, "the collector is shutting down; retry")
		return
	}
	ten, ok := c.authenticate(r.Header.Get("Authorization"))
	if !ok {
		c.metrics.refuse(path, reqUnauthenticated)
		httpx.Challenge(w, false)
		writeOTLPStatus(w, http.StatusUnauthorized, isJSON, codes.Unauthenticated, "missing or unknown bearer token (Authorization: Bearer TOKEN)")
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if code, reason, err := c.readBody(r, buf); err != nil {
		c.metrics.refuse(path, reason)
		grpcCode := codes.InvalidArgument
		if code == http.StatusRequestEntityTooLarge {
			grpcCode = codes.ResourceExhausted
		}
		writeOTLPStatus(w, code, isJSON, grpcCode, err.Error())
		return
	}
	// Nesting is bounded before the OTLP decoders recurse into it.
	lim := c.deps.Limits.OrDefault()
	var err error
	if isJSON {
		err = ingest.CheckDepth(buf.Bytes(), lim.MaxDepth)
	} else {
		err = ingest.CheckOTLPProtoDepth(buf.Bytes(), lim.MaxDepth)
	}
	if err != nil {
		var le *limits.Error
		if errors.As(err, &le) {
			c.metrics.breach(path, le.Breach)
		}
		c.metrics.refuse(path, reqLimit)
		writeOTLPStatus(w, http.StatusBadRequest, isJSON, codes.InvalidArgument, err.Error())
		return
	}
	req := ptraceotlp.NewExportRequest()
	if isJSON {
		err = req.UnmarshalJSON(buf.Bytes())
	} else {
		err = req.UnmarshalProto(buf.Bytes())
	}
	if err != nil {
		c.metrics.refuse(path, reqUnreadable)
		writeOTLPStatus(w, http.StatusBadRequest, isJSON, codes.InvalidArgument, "cannot decode OTLP request: "+err.Error())
		return
	}
	res, err := c.ingestTraces(r.Context(), req.Traces(), ten.ID, path)
	if errors.Is(err, errNeverFits) || isTooLargeForBroker(err) {
		c.metrics.refuse(path, reqTooLarge)
		writeOTLPStatus(w, http.StatusRequestEntityTooLarge, isJSON, codes.InvalidArgument, err.Error()+"; export smaller batches")
		return
	}
	if err != nil {
		reason, msg := produceRefusal(err)
		c.metrics.refuse(path, reason)
		w.Header().Set("Retry-After", c.retryAfterSeconds())
		writeOTLPStatus(w, http.StatusServiceUnavailable, isJSON, codes.Unavailable, msg)
		return
	}
	resp := exportResponse(res)
	var body []byte
	if isJSON {
		body, err = resp.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
	} else {
		body, err = resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	if err != nil {
		writeOTLPStatus(w, http.StatusInternalServerError, isJSON, codes.Internal, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// depthCodec is gRPC's proto codec with the nesting bound checked on the
// raw request first (CheckOTLPProtoDepth), as the OTLP/HTTP receiver does.
type depthCodec struct {
	delegate encoding.CodecV2
	maxDepth int
	m        *metrics
}

func (d depthCodec) Marshal(v any) (mem.BufferSlice, error) { return d.delegate.Marshal(v) }

func (d depthCodec) Unmarshal(data mem.BufferSlice, v any) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	err := ingest.CheckOTLPProtoDepth(buf.ReadOnlyData(), d.maxDepth)
	buf.Free()
	if err != nil {
		d.m.breach(pathOTLPGRPC, limits.BreachDepth)
		d.m.refuse(pathOTLPGRPC, reqLimit)
		return err
	}
	return d.delegate.Unmarshal(data, v)
}

func (d depthCodec) Name() string { return d.delegate.Name() }

// writeOTLPStatus writes an OTLP/HTTP error: a google.rpc.Status in the request's encoding.
func writeOTLPStatus(w http.ResponseWriter, code int, isJSON bool, gc codes.Code, msg string) {
	st := status.New(gc, msg).Proto()
	var (
		b   []byte
		err error
	)
	if isJSON {
		b, err = protojson.Marshal(st)
		w.Header().Set("Content-Type", "application/json")
	} else {
		b, err = proto.Marshal(st)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	if err != nil {
		b = []byte(msg)
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
