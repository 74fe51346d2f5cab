package kafkax

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestEnsureTopicsCreatesMissingAndLeavesExistingAlone(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "existing"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cfg := Config{}
	cfg.ApplyDefaults()
	cfg.Topics.Partitions = 3
	if err := EnsureTopics(ctx, cl, cfg.Topics, nil, "existing", "fresh"); err != nil {
		t.Fatal(err)
	}
	// Running it again is a no-op, not an error.
	if err := EnsureTopics(ctx, cl, cfg.Topics, nil, "existing", "fresh"); err != nil {
		t.Fatal(err)
	}
	// A fresh client: kgo caches metadata answers for a few seconds.
	cl2, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	td, err := kadm.NewClient(cl2).ListTopics(ctx, "existing", "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(td["fresh"].Partitions); got != 3 {
		t.Errorf("fresh topic has %d partitions, want 3 from config", got)
	}
	if got := len(td["existing"].Partitions); got != 2 {
		t.Errorf("existing topic was altered to %d partitions, want its original 2", got)
	}
}

func TestValidateTopicNameClash(t *testing.T) {
	cfg := Config{}
	cfg.ApplyDefaults()
	cfg.Topics.DLQ = cfg.Topics.Usage
	if err := cfg.Validate(); err == nil {
		t.Fatal("two roles sharing one topic name validated")
	}
}

func TestStartEmbeddedReportsPortInUse(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = StartEmbedded(EmbeddedConfig{Listen: e.Addrs()[0]}, 1)
	if err == nil {
		t.Fatal("second broker on the same port started")
	}
}
