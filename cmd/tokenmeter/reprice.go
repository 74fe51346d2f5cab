package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/processor"
)

func init() {
	register("reprice", "replay DLQ records (unknown_model, fx_missing) onto usage.v1 once the catalogue is fixed; dedupe prevents double counting", repriceCmd)
}

func repriceCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reprice", flag.ContinueOnError)
	fromDLQ := fs.Bool("from-dlq", false, "replay records from the DLQ topic (required; the only source today)")
	since := fs.String("since", "", "replay records rejected at or after this time (RFC 3339 or YYYY-MM-DD, UTC)")
	until := fs.String("until", "", "replay records rejected before this time (RFC 3339 or YYYY-MM-DD, UTC)")
	byEventTime := fs.Bool("by-event-time", false, "apply --since/--until to the events' event_time instead of the rejection time")
	offsets := fs.String("offsets", "", "only these DLQ ranges: PARTITION:FROM-TO[,PARTITION:FROM-] (inclusive; empty TO = end)")
	reasons := fs.String("reason", "unknown_model,fx_missing", "comma-separated DLQ reasons to replay")
	dryRun := fs.Bool("dry-run", false, "count what would be replayed; produce nothing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tokenmeter reprice CONFIG --from-dlq [--since T] [--until T] [--offsets P:FROM-TO,...] [--reason r1,r2] [--dry-run]")
		fs.PrintDefaults()
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		fs.Usage()
		return errors.New("exactly one CONFIG file is required")
	}
	if !*fromDLQ {
		return errors.New("--from-dlq is required (replaying from the DLQ topic is the only mode)")
	}
	cfg, err := loadConfig(flag.NewFlagSet("reprice", flag.ContinueOnError), positional)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s is invalid:\n%w", cfg.Path, err)
	}
	opts := processor.RepriceOptions{ByEventTime: *byEventTime, DryRun: *dryRun}
	if opts.Since, err = repriceParseTime("since", *since); err != nil {
		return err
	}
	if opts.Until, err = repriceParseTime("until", *until); err != nil {
		return err
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Since.Before(opts.Until) {
		return errors.New("--since must be before --until")
	}
	if *offsets != "" {
		if opts.Offsets, err = processor.ParseOffsets(*offsets); err != nil {
			return err
		}
	}
	for _, r := range strings.Split(*reasons, ",") {
		if r = strings.TrimSpace(r); r != "" {
			opts.Reasons = append(opts.Reasons, r)
		}
	}
	k := cfg.Kafka
	if k.UsesEmbedded() {
		// The embedded broker lives inside `tokenmeter run`: reach it where it listens.
		k.Brokers = []string{k.Embedded.Listen}
	}
	if err := repricePing(ctx, k); err != nil {
		return err
	}
	res, err := processor.Reprice(ctx, k, opts, func(msg string) { fmt.Fprintln(os.Stderr, "reprice:", msg) })
	if err != nil {
		return err
	}
	verb := "replayed"
	if opts.DryRun {
		verb = "would replay"
	}
	fmt.Printf("scanned %d DLQ records; %s %d onto %s\n", res.Scanned, verb, res.Replayed, k.Topics.Usage)
	names := make([]string, 0, len(res.ByReason))
	for r := range res.ByReason {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		fmt.Printf("  %-20s %d\n", r, res.ByReason[r])
	}
	return nil
}

func repriceParseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--%s: %q is not RFC 3339 or YYYY-MM-DD", name, v)
}

func repricePing(ctx context.Context, k kafkax.Config) error {
	cl, err := kgo.NewClient(k.ClientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	if err := kafkax.Ping(ctx, cl); err != nil {
		return fmt.Errorf("kafka: brokers %v do not answer: %w", k.Brokers, err)
	}
	return nil
}
