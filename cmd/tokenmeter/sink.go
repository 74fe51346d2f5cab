package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/kafkax"
	"github.com/tokenmeter/tokenmeter/internal/sink"
)

func init() {
	register("sink", "sink reset-offsets CONFIG --topic T --partition P --to earliest|latest|OFFSET: accept a partition's current Kafka log after the sink stopped it", sinkCmd)
}

func sinkCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "reset-offsets" {
		return errors.New("usage: tokenmeter sink reset-offsets CONFIG --topic T --partition P --to earliest|latest|OFFSET")
	}
	fs := flag.NewFlagSet("sink reset-offsets", flag.ContinueOnError)
	topic := fs.String("topic", "", "topic of the stopped partition (as in the sink's error)")
	partition := fs.Int("partition", -1, "partition number")
	to := fs.String("to", "", "earliest (the log start), latest (the log end: skips what is there now) or an offset")
	cfg, err := loadConfig(fs, args[1:])
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s is invalid:\n%w", cfg.Path, err)
	}
	if *topic == "" || *partition < 0 || *to == "" {
		return errors.New("--topic, --partition and --to are required")
	}
	var off int64
	switch *to {
	case "earliest":
		off = sink.ResetEarliest
	case "latest":
		off = sink.ResetLatest
	default:
		if off, err = strconv.ParseInt(*to, 10, 64); err != nil || off < 0 {
			return fmt.Errorf("--to %q: want earliest, latest or an offset >= 0", *to)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	kcfg := cfg.Kafka
	if kcfg.UsesEmbedded() {
		// The embedded broker lives in `tokenmeter run`: stop it first; this
		// opens the same data directory.
		ecfg := kcfg.Embedded
		ecfg.DataDir = cfg.Resolve(ecfg.DataDir)
		emb, err := kafkax.StartEmbedded(ecfg, kcfg.Topics.Partitions)
		if err != nil {
			return fmt.Errorf("embedded broker (is `tokenmeter run` still running?): %w", err)
		}
		defer emb.Close()
		kcfg.Brokers = emb.Addrs()
	}
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := sink.ResetOffsets(ctx, sink.NewStore(conn, cfg.ClickHouse.Database), kcfg, *topic, int32(*partition), off)
	if err != nil {
		return err
	}
	if res.Previous != "" {
		fmt.Printf("%s/%d: ledger was %s\n", res.Topic, res.Partition, res.Previous)
	}
	fmt.Printf("%s/%d: the sink resumes at offset %d (topic id %s, generation %d) when it next starts\n", res.Topic, res.Partition, res.ResumeAt, res.TopicID, res.Generation)
	return nil
}
