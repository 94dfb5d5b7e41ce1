package errview

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// AptChromium installs the browser this test needs on Debian.
const AptChromium = "apt-get install -y --no-install-recommends chromium"

// findChromium returns the path of a Chromium binary. Without one, the test
// fails in CI (CI=true) and is skipped elsewhere, saying how to install it.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium binary in PATH; install it with: " + AptChromium
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// dumpDOM loads url in headless Chromium and returns the DOM after the page's
// scripts (if any ran) as Chromium serializes it.
func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}

// TestErrorsPageInChromium renders /errors.html in a real browser: the counts
// are on the page, and a record whose data and error carry markup shows that
// markup as text: no element from it exists and no script from it ran.
func TestErrorsPageInChromium(t *testing.T) {
	chromium := findChromium(t)
	mux := http.NewServeMux()
	mux.Handle("/errors", Handler(FileSource{Dir: fixture(t), Prefix: "dead-letters"}, nil))
	mux.Handle("/errors.html", Handler(FileSource{Dir: fixture(t), Prefix: "dead-letters"}, nil))
	// The control: the same browser run does execute a page's scripts, so the
	// absence of their effects below means something.
	mux.HandleFunc("/control.html", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!DOCTYPE html><html><body><script>document.body.setAttribute("data-ran","yes")</script></body></html>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	if dom := dumpDOM(t, chromium, srv.URL+"/control.html"); !strings.Contains(dom, `data-ran="yes"`) {
		t.Fatalf("control page: scripts did not run in this browser, so the test below proves nothing:\n%s", dom)
	}

	dom := dumpDOM(t, chromium, srv.URL+"/errors.html")
	compact := regexp.MustCompile(`\s+`).ReplaceAllString(dom, " ")
	for _, want := range []string{
		`<strong>8</strong> dead letters`,
		`<td>schema_error</td><td class="n">5</td>`,
		`<td>decode_error</td><td class="n">2</td>`,
		`<td>no_route</td><td class="n">1</td>`,
		`<td>orders</td><td><code>items[].price</code></td><td class="n">2</td>`,
		// The record's markup, as text.
		`&lt;script&gt;document.body.setAttribute("data-pwned","1")&lt;/script&gt;&lt;img src=x onerror=`,
		`id: want int, got string "&lt;b&gt;6&lt;/b&gt;"`,
		`fffe206e6f74206a736f6e20617420616c6c`,
	} {
		if !strings.Contains(compact, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, dom)
		}
	}
	for _, bad := range []string{"<script", "<img", "<b>6", "data-pwned="} {
		if strings.Contains(dom, bad) {
			t.Errorf("rendered page carries %q: markup from a record became part of the page:\n%s", bad, dom)
		}
	}

	// Filters through the form's parameters.
	dom = dumpDOM(t, chromium, srv.URL+"/errors.html?reason=decode_error")
	if !strings.Contains(dom, "<strong>2</strong> dead letters with reason decode_error") {
		t.Errorf("filtered page lacks its count:\n%s", dom)
	}
}
