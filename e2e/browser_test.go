package e2e_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// chromiumFlags are those playwright-core passes when it launches Chromium
// itself (console/e2e/lib.mjs), less what concerns only other platforms:
// the tests see the same browser whether they share this one or launch
// their own. The background-throttling ones matter here: a page of one
// test file must not be slowed because another file's page has the focus.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--hide-scrollbars", "--mute-audio",
	"--no-first-run", "--no-default-browser-check", "--disable-sync", "--disable-extensions",
	"--disable-background-networking", "--disable-component-update", "--disable-default-apps",
	"--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows", "--disable-renderer-backgrounding",
	"--disable-back-forward-cache", "--disable-breakpad", "--disable-dev-shm-usage", "--disable-field-trial-config",
	"--disable-hang-monitor", "--disable-ipc-flooding-protection", "--disable-popup-blocking", "--disable-prompt-on-repost",
	"--force-color-profile=srgb", "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
	"--no-service-autorun", "--disable-search-engine-choice-screen",
	"--disable-features=PaintHolding,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,MediaRouter,OptimizationHints,ThirdPartyStoragePartitioning,DestroyProfileOnBrowserClose",
}

var devtoolsRe = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startChromium starts one headless Chromium for all of a test's browser
// test files and returns its DevTools endpoint (lib.mjs connects to it over
// CDP when PORTRAIT_CDP names it). Launching a browser per file cost more
// than many of the files' own work; each file still gets a fresh browser
// context, so nothing cached or signed in passes from one file to another.
// The browser and its renderers are stopped when the test ends.
func startChromium(t *testing.T, chromium string) string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"--user-data-dir=" + filepath.Join(dir, "profile"), "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"}, chromiumFlags...)
	cmd := exec.Command(chromium, append(args, "about:blank")...)
	// Its own process group: Debian's chromium is a shell script around
	// the browser, which starts renderers and helpers of its own; the
	// group is stopped as a whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", chromium, err)
	}
	endpoint := make(chan string, 1)
	logPath := filepath.Join(dir, "chromium.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logf.Write(append(sc.Bytes(), '\n'))
			if m := devtoolsRe.FindSubmatch(sc.Bytes()); m != nil {
				select {
				case endpoint <- string(m[1]):
				default:
				}
			}
		}
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	select {
	case ep := <-endpoint:
		return ep
	case <-exited:
		b, _ := os.ReadFile(logPath)
		t.Fatalf("chromium exited before listening for DevTools:\n%s", tail(b, 4000))
	case <-time.After(60 * time.Second):
		b, _ := os.ReadFile(logPath)
		t.Fatalf("chromium did not listen for DevTools within 60 s:\n%s", tail(b, 4000))
	}
	return ""
}
