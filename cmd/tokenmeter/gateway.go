package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
)

func init() {
	register("gateway", "run the metering gateway of CONFIG with the budget role it asks (roles budget, gateway; docs/gateway.md)", gatewayCmd)
}

// gatewayCmd is `tokenmeter run` with roles [budget, gateway]: the proxy
// and the ledger it reserves on, producing usage events for a processor
// running elsewhere (or in the same process with `run` and every role).
func gatewayCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown may take to drain")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	cfg.Roles = []string{app.RoleBudget, app.RoleGateway}
	tel, err := telemetry.New(cfg.Telemetry, os.Stderr)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	return app.Run(ctx, cfg, tel, *grace)
}
