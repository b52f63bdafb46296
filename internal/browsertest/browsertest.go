// Package browsertest starts headless Chromium for the tests of the pages
// (approvalhttp, signin), driven by chromedp, with the switches every
// browser test shares: APPROVAL_REQUIRE_BROWSER=1 turns a missing browser
// into a failure (CI sets it), and APPROVAL_SCREENSHOT_DIR keeps the
// screenshots a test takes.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The switches.
const (
	EnvRequire     = "APPROVAL_REQUIRE_BROWSER"
	EnvScreenshots = "APPROVAL_SCREENSHOT_DIR"
)

// Start starts headless Chromium with a window of width by height for
// t, or skips t without one; everything ends with t, and after 90
// seconds at the latest.
func Start(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but no chromium on PATH (apt-get install chromium)", EnvRequire)
		}
		t.Skip("browser test skipped: no chromium on PATH (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return ctx
}

// ScreenshotDir returns where t's screenshots go: APPROVAL_SCREENSHOT_DIR
// if set (created), else a directory that goes with t.
func ScreenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		return t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// Screenshot saves the visible part of the page as name in dir.
func Screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
}
