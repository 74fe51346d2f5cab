package gateway

import (
	"context"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

// authzGRPC is Envoy's ext_authz gRPC service
// (envoy.service.auth.v3.Authorization/Check) on gateway.authz_grpc_listen,
// answering from the same decision as the HTTP endpoints: the original
// path, headers and (with_request_body) body come in the CheckRequest's
// attributes.request.http; an allowed call gets OK with the
// X-Tokenmeter-* headers for the upstream request, a denial
// PERMISSION_DENIED with the provider-shaped 403 body Envoy sends the client.
type authzGRPC struct {
	authv3.UnimplementedAuthorizationServer
	g *Gateway
}

func (s *authzGRPC) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	hdr := http.Header{}
	for k, v := range h.GetHeaders() {
		if !strings.HasPrefix(k, ":") {
			hdr.Set(k, v)
		}
	}
	for _, kv := range h.GetHeaderMap().GetHeaders() {
		if !strings.HasPrefix(kv.GetKey(), ":") {
			v := kv.GetValue()
			if v == "" {
				v = string(kv.GetRawValue())
			}
			hdr.Set(kv.GetKey(), v)
		}
	}
	if h.GetId() != "" && hdr.Get("X-Request-Id") == "" {
		hdr.Set("X-Request-Id", h.GetId())
	}
	body := h.GetRawBody()
	if len(body) == 0 && h.GetBody() != "" {
		body = []byte(h.GetBody())
	}
	path := h.GetPath()
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	v := s.g.decide(path, hdr, body, h.GetSize())
	var opts []*corev3.HeaderValueOption
	for k, vs := range v.headers {
		if k == "Content-Type" && v.status == http.StatusOK {
			continue
		}
		for _, val := range vs {
			opts = append(opts, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: strings.ToLower(k), Value: val}})
		}
	}
	if v.status == http.StatusOK {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code.Code_OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: opts}}}, nil
	}
	c := code.Code_PERMISSION_DENIED
	if v.status == http.StatusUnauthorized {
		c = code.Code_UNAUTHENTICATED
	} else if v.status == http.StatusBadRequest || v.status == http.StatusRequestEntityTooLarge {
		c = code.Code_INVALID_ARGUMENT
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(c), Message: string(v.body)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(v.status)}, Headers: opts, Body: string(v.body)}}}, nil
}
