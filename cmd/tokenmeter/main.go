// Command tokenmeter runs any set of tokenmeter's pipeline roles and its
// operator commands. main only parses flags, loads config, wires and handles
// signals; the work lives in internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/app"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/telemetry"
)

// command is one subcommand. Files in this package register theirs in init.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

// exitStatus is returned by a command whose answer is its exit status (the
// command has already printed what it has to say).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands[name] = command{summary: summary, run: run}
}

func init() {
	register("run", "run the pipeline roles of CONFIG (all roles on an embedded broker when no brokers are set)", runCmd)
	register("validate", "check CONFIG and report every problem at once", validateCmd)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tokenmeter COMMAND [flags] [CONFIG]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-17s %s\n", n, commands[n].summary)
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "tokenmeter: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	// First SIGINT/SIGTERM cancels ctx: intake stops and accepted events drain.
	// A second one forces exit.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "tokenmeter: stopping (signal again to force)")
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "tokenmeter: forced exit")
		os.Exit(130)
	}()
	err := cmd.run(ctx, os.Args[2:])
	cancel()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		var status exitStatus
		if errors.As(err, &status) {
			os.Exit(int(status))
		}
		fmt.Fprintf(os.Stderr, "tokenmeter %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// loadConfig parses a subcommand's flags and its CONFIG (positional, or
// -config). Flags may come before or after CONFIG.
func loadConfig(fs *flag.FlagSet, args []string) (*app.Config, error) {
	path := fs.String("config", "", "pipeline config file (or give it as the first argument)")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case *path == "" && len(positional) == 1:
		*path = positional[0]
	case *path == "" && len(positional) == 0:
		return nil, errors.New("a CONFIG file is required")
	case len(positional) > 1 || (*path != "" && len(positional) > 0):
		return nil, fmt.Errorf("one CONFIG file expected; also got %q", positional)
	}
	return app.Load(*path)
}

// parseInterspersed parses flags anywhere among the arguments (the flag
// package stops at the first positional one) and returns the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func runCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown may take to drain")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	tel, err := telemetry.New(cfg.Telemetry, os.Stderr)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	return app.Run(ctx, cfg, tel, *grace)
}

func validateCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s is invalid:\n%w", cfg.Path, err)
	}
	fmt.Printf("%s: ok (roles %v)\n", cfg.Path, cfg.Roles)
	if cfg.Pricing.FX != "" {
		if fx, err := pricing.ReadFX(cfg.Resolve(cfg.Pricing.FX)); err == nil {
			for _, p := range pricing.CheckFXCoverage(fx, cfg.Pricing, time.Now()) {
				fmt.Println(p)
			}
		}
	}
	return nil
}

// envOr is the environment variable k, or def when it is not set.
func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}
