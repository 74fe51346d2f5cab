package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/gateway/gatewaytest"
)

func init() {
	register("fake-provider", "serve a fake OpenAI/Anthropic/Gemini-compatible API on loopback (demo and benchmarks; bills what the X-Fake-Usage header asks, within the body and cap)", fakeProviderCmd)
}

func fakeProviderCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fake-provider", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9097", "address to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &gatewaytest.Provider{}, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "fake-provider: listening on %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
