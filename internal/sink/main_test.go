package sink

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it starts: no goroutine of a sink, its Kafka
// clients or its ClickHouse connections outlives the package's tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
