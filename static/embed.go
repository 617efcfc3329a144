// Package static holds the web pages the server serves, embedded in the
// binary so that `tabreduce serve` alone serves everything.
package static

import (
	"embed"
	"io/fs"
)

//go:embed *.html
var files embed.FS

// FS returns the embedded pages.
func FS() fs.FS { return files }

// Landing returns the landing page served at GET /.
func Landing() []byte {
	b, err := files.ReadFile("index.html")
	if err != nil {
		panic("static: index.html is not embedded: " + err.Error())
	}
	return b
}
