package processor

import (
	"fmt"
	"strings"
	"testing"
)

// Issue 17 item 10: 300 events with 300 KB model names became 300 label
// values and grew /metrics to 90 MB. Names from input are cut and capped.
func TestUnknownModelLabelsAreBounded(t *testing.T) {
	var m metrics
	seen := map[[2]string]bool{}
	for i := 0; i < 300; i++ {
		l := m.modelLabel([2]string{"openai", fmt.Sprintf("%03d", i) + strings.Repeat("m", 300<<10)})
		if len(l[0]) > maxLabelBytes || len(l[1]) > maxLabelBytes {
			t.Fatalf("label %d is %d+%d bytes", i, len(l[0]), len(l[1]))
		}
		seen[l] = true
	}
	if len(seen) != maxModelLabels+1 || !seen[[2]string{"other", "other"}] {
		t.Errorf("%d distinct label pairs, want %d plus other/other", len(seen), maxModelLabels)
	}
	// A pair already labelled keeps its label after the cap is reached.
	if l := m.modelLabel([2]string{"openai", "000" + strings.Repeat("m", 300<<10)}); l[0] != "openai" {
		t.Errorf("known pair relabelled %v", l)
	}
}
