package retry_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/ingest"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/retry"
	"github.com/tokenmeter/tokenmeter/internal/sink"
)

// Every stage's bad-input error is permanent under the one classification;
// a plain I/O error is not.
func TestStageErrorsArePermanent(t *testing.T) {
	for _, err := range []error{
		&pricing.Error{Reason: pricing.ReasonUnknownModel, Detail: "x"},
		&ingest.ItemError{Reason: ingest.ReasonInvalidField},
		&sink.RowError{Table: "priced_usage", Row: 3, Err: errors.New("too big")},
	} {
		if !retry.IsPermanent(fmt.Errorf("stage: %w", err)) {
			t.Errorf("%T is not permanent", err)
		}
	}
	if retry.IsPermanent(errors.New("connection refused")) {
		t.Error("a plain error must be retryable")
	}
}
