package report

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tool finds a program the browser test needs; deploy/local/tools.sh
// installs them (Debian chromium, poppler-utils). Missing tools skip the
// test, unless TOKENMETER_REQUIRE_BROWSER=1 (make test sets it).
func tool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("TOKENMETER_REQUIRE_BROWSER") == "1" {
		t.Fatalf("%s not installed (deploy/local/tools.sh ensure)", names[0])
	}
	t.Skipf("%s not installed (deploy/local/tools.sh ensure)", names[0])
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The pack opens in headless Chromium (a screenshot of the first page is
// taken; with TOKENMETER_BOARD_PACK_PNG set it is written there, which is
// how docs/board-pack.png is made) and its PDF turns into images with
// pdftoppm; the PDF's text carries the key numbers.
func TestBoardPackInChromiumAndPoppler(t *testing.T) {
	chromium := tool(t, "chromium", "chromium-browser")
	pdftoppm := tool(t, "pdftoppm")
	pdftotext := tool(t, "pdftotext")
	dir := t.TempDir()
	hp, pp := writeFixture(t, dir)

	shot := filepath.Join(dir, "first-page.png")
	run(t, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1200,1500",
		"--screenshot="+shot, "file://"+hp)
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 20000 {
		t.Fatalf("screenshot missing or blank: %v %v", st, err)
	}
	if dst := os.Getenv("TOKENMETER_BOARD_PACK_PNG"); dst != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	run(t, pdftoppm, "-r", "50", "-png", pp, filepath.Join(dir, "page"))
	pages, _ := filepath.Glob(filepath.Join(dir, "page-*.png"))
	if len(pages) < 7 {
		t.Fatalf("pdftoppm made %d page images, want >= 7 (one per section)", len(pages))
	}
	txt := run(t, pdftotext, "-layout", pp, "-")
	for _, want := range []string{"HKD 180,000.00", "HKD 240,000.00", "HKD 313,000.75", "-133,800.00", "90.05", "Reconciliation", "Data quality", "no forecast"} {
		if !strings.Contains(txt, want) {
			t.Errorf("PDF text misses %q", want)
		}
	}
}
