package static

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// A Web Worker started from a module script fetches the script, then the
// modules it imports, then theirs: one round trip each before it runs a
// line, on the path of a fresh tab's first result. So the scripts workers
// start from are served bundled, each with every module it imports
// (transitively) in a scope of its own, in the order a browser would run
// them. The bundler knows only the forms our scripts use, and refuses any
// other: a static import is `import { a, b as c } from './x.js';`
// or `import * as x from './x.js';`, and a module exports only by
// `export const|function|async function|class NAME`. Dynamic import()
// is left as it is.

// workerScripts are the module scripts Web Workers start from (pool.js):
// the connection worker and the compute worker.
var workerScripts = []string{"js/conn.js", "js/task.js"}

var (
	importLine = regexp.MustCompile(`(?m)^import\s+(?:\*\s+as\s+([A-Za-z_$][\w$]*)|\{([^}]*)\})\s+from\s+'\./([\w.-]+\.js)';[^\n]*$`)
	exportDecl = regexp.MustCompile(`(?m)^export\s+((?:async\s+)?function\*?|class|const)\s+([A-Za-z_$][\w$]*)`)
	// otherModuleSyntax is any import or export the bundler would not
	// understand, once the forms above are gone.
	otherModuleSyntax = regexp.MustCompile(`(?m)^\s*(?:import\s*[^\s(]|export\b)|\bimport\.meta\b`)
	importedName      = regexp.MustCompile(`^([A-Za-z_$][\w$]*)(?:\s+as\s+([A-Za-z_$][\w$]*))?$`)
)

// bundle returns the module script entry of fsys (a path such as
// "js/conn.js") with the modules it imports inlined.
func bundle(fsys fs.FS, entry string) ([]byte, error) {
	b := &bundler{fsys: fsys, done: map[string]bool{}, active: map[string]bool{}}
	text, err := b.module(entry, true)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", entry, err)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "// %s with the modules it imports (%s), bundled by the server.\n", path.Base(entry), strings.Join(b.order, ", "))
	out.Write(b.deps.Bytes())
	out.WriteString(text)
	return out.Bytes(), nil
}

type bundler struct {
	fsys         fs.FS
	done, active map[string]bool
	order        []string     // the modules inlined, in the order they run
	deps         bytes.Buffer // their scopes
}

// scopeName is the constant a module's exports are bound to in a bundle.
func scopeName(file string) string {
	return "__module_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.TrimSuffix(path.Base(file), ".js"))
}

// module returns file's text with its imports replaced by bindings to
// the scopes of the modules it imports, which it writes to b.deps first.
// Unless entry, the text has its exports' keywords dropped and ends by
// returning them.
func (b *bundler) module(file string, entry bool) (string, error) {
	if b.active[file] {
		return "", fmt.Errorf("%s imports itself (through a cycle)", file)
	}
	b.active[file] = true
	defer delete(b.active, file)
	src, err := fs.ReadFile(b.fsys, file)
	if err != nil {
		return "", err
	}
	var failed error
	text := importLine.ReplaceAllStringFunc(string(src), func(line string) string {
		m := importLine.FindStringSubmatch(line)
		dep := path.Join(path.Dir(file), m[3])
		if err := b.dependency(dep); err != nil && failed == nil {
			failed = err
		}
		if m[1] != "" {
			return "const " + m[1] + " = " + scopeName(dep) + ";"
		}
		var names []string
		for _, n := range strings.Split(m[2], ",") {
			if n = strings.TrimSpace(n); n == "" {
				continue
			}
			p := importedName.FindStringSubmatch(n)
			if p == nil {
				failed = fmt.Errorf("%s: cannot bundle the import of %q", file, n)
				continue
			}
			if p[2] != "" {
				n = p[1] + ": " + p[2]
			}
			names = append(names, n)
		}
		return "const { " + strings.Join(names, ", ") + " } = " + scopeName(dep) + ";"
	})
	if failed != nil {
		return "", failed
	}
	var exports []string
	if !entry {
		for _, m := range exportDecl.FindAllStringSubmatch(text, -1) {
			exports = append(exports, m[2])
		}
		text = exportDecl.ReplaceAllString(text, "$1 $2")
	}
	if loc := otherModuleSyntax.FindStringIndex(text); loc != nil {
		return "", fmt.Errorf("%s: cannot bundle %q (only imports of ./x.js by name or as a namespace, and export const|function|class)", file, strings.TrimSpace(text[loc[0]:min(loc[1]+20, len(text))]))
	}
	if !entry {
		text = "const " + scopeName(file) + " = (() => {\n" + text + "\nreturn { " + strings.Join(exports, ", ") + " };\n})();\n"
	}
	return text, nil
}

// dependency writes dep's scope to b.deps, once.
func (b *bundler) dependency(dep string) error {
	if b.done[dep] {
		return nil
	}
	text, err := b.module(dep, false)
	if err != nil {
		return err
	}
	b.done[dep] = true
	b.order = append(b.order, path.Base(dep))
	b.deps.WriteString(text)
	return nil
}
