package jobs

import (
	"bufio"
	"bytes"
	"strings"
)

// Summaries returns each built-in job's one-line description, by name, as
// jobs/README.md gives it (a "- `name` — what it does" line); a job the
// README does not describe is missing.
func Summaries() map[string]string {
	readme, err := files.ReadFile("README.md")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		name, text, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "- `"), "` — ")
		if ok && strings.HasPrefix(sc.Text(), "- `") {
			out[name] = text
		}
	}
	return out
}
