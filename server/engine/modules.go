package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tabreduce/tabreduce/server/blob"
	"github.com/tabreduce/tabreduce/server/broker"
	"github.com/tabreduce/tabreduce/wasm/modenc"
	"github.com/tabreduce/tabreduce/wasm/runner"
)

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// modules is the content-addressed module registry: every module the server
// accepted is a file <sha256>.wasm in dir, checked by the runner (imports,
// exports, ABI version) before it is kept. Built-in jobs are registered by
// name at start.
type modules struct {
	dir    string
	runner *runner.Runner
	log    *slog.Logger
	// shared, when servers share a store, holds every uploaded module
	// (modules/<sha>.wasm): a server that lacks one fetches it from there.
	shared blob.Store

	mu       sync.Mutex
	byName   map[string]string // built-in name → sha
	trusted  map[string]bool   // built-ins run without termination checks
	compiled map[string]bool   // loaded into the runner
	sizes    map[string]int64
	checked  map[string]bool   // "<sha><suffix>": the compressed file decodes to its module
	names    map[string]string // an upload's name (its file's), as kept in <sha>.name
}

func newModules(dir string, builtins map[string][]byte, encodings map[string]map[string][]byte, r *runner.Runner, log *slog.Logger) (*modules, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("module dir: %w", err)
	}
	m := &modules{dir: dir, runner: r, log: log, byName: map[string]string{}, trusted: map[string]bool{},
		compiled: map[string]bool{}, sizes: map[string]int64{}, checked: map[string]bool{}, names: map[string]string{}}
	names := make([]string, 0, len(builtins))
	for name := range builtins {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sha, err := m.store(builtins[name], builtinEncodings(encodings[name]))
		if err != nil {
			return nil, fmt.Errorf("built-in job %s: %w", name, err)
		}
		m.byName[name] = sha
		m.trusted[sha] = true // compiled on first use: start-up stays fast
	}
	return m, nil
}

// put validates, compiles and stores an uploaded module, and the name it
// was uploaded under (its file's), if any: the latest name wins.
func (m *modules) put(ctx context.Context, wasm []byte, name string) (string, error) {
	sha, err := m.runner.Compile(ctx, wasm)
	if errors.Is(err, runner.ErrBusy) {
		return "", err // not the module's fault: try again later
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", broker.ErrInvalid, err)
	}
	if _, err := m.store(wasm, nil); err != nil {
		return "", err
	}
	name = CleanModuleName(name)
	if m.shared != nil {
		if _, err := m.shared.Put(ctx, moduleBlob(sha), bytes.NewReader(wasm), int64(len(wasm))); err != nil {
			return "", fmt.Errorf("store module %s: %w", sha, err)
		}
	}
	m.mu.Lock()
	m.compiled[sha] = true
	old, builtin := m.nameLocked(sha), m.trusted[sha]
	if name != "" && !builtin {
		m.names[sha] = name
	}
	m.mu.Unlock()
	if name != "" && name != old && !builtin {
		if err := writeFileSync(filepath.Join(m.dir, sha+".name"), []byte(name)); err != nil {
			return "", fmt.Errorf("store module %s's name: %w", sha, err)
		}
	}
	return sha, nil
}

// maxModuleName bounds the name an upload is known by.
const maxModuleName = 100

// CleanModuleName turns what a client says a module is called into a
// name to show: the base of a path, without control characters, at most
// maxModuleName bytes of valid UTF-8; "" if nothing is left.
func CleanModuleName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	for len(s) > maxModuleName {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return strings.TrimSpace(s)
}

// nameLocked is what a module is called: a built-in's name, or the name
// it was uploaded under, read from <sha>.name the first time. m.mu held.
func (m *modules) nameLocked(sha string) string {
	for n, s := range m.byName {
		if s == sha {
			return n
		}
	}
	if n, ok := m.names[sha]; ok {
		return n
	}
	if !shaRE.MatchString(sha) {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(m.dir, sha+".name"))
	if err != nil || len(b) > 4*maxModuleName {
		b = nil
	}
	n := CleanModuleName(string(b)) // what is read back is checked as what came in
	m.names[sha] = n
	return n
}

// name is nameLocked for callers without the lock.
func (m *modules) name(sha string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nameLocked(sha)
}

// store writes a module's file under its sha256, and its compressed forms
// beside it, and returns the sha. encoded supplies compressed forms made
// beforehand (a built-in's, by the build); nil compresses the module here,
// once, as an upload is.
func (m *modules) store(wasm []byte, encoded map[string][]byte) (string, error) {
	sum := sha256.Sum256(wasm)
	sha := hex.EncodeToString(sum[:])
	path := filepath.Join(m.dir, sha+".wasm")
	if _, err := os.Stat(path); err != nil {
		if err := writeFileSync(path, wasm); err != nil {
			return "", fmt.Errorf("store module %s: %w", sha, err)
		}
	}
	for _, enc := range modenc.Encodings {
		epath := path + modenc.Suffix(enc)
		if _, err := os.Stat(epath); err == nil {
			continue
		}
		z, ok := encoded[enc]
		if !ok && encoded != nil {
			continue // a built-in the build did not compress: served as it is
		}
		if !ok {
			var err error
			if z, err = modenc.Encode(wasm, enc, modenc.UploadQuality); err != nil {
				return "", fmt.Errorf("compress module %s: %w", sha, err)
			}
		}
		if err := writeFileSync(epath, z); err != nil {
			return "", fmt.Errorf("store module %s: %w", sha, err)
		}
	}
	m.mu.Lock()
	m.sizes[sha] = int64(len(wasm))
	m.mu.Unlock()
	return sha, nil
}

// ensureCompiled loads a stored module into the runner: built-ins on the
// trusted runtime, everything else on the interruptible one.
func (m *modules) ensureCompiled(ctx context.Context, sha string) error {
	m.mu.Lock()
	done, trusted := m.compiled[sha], m.trusted[sha]
	m.mu.Unlock()
	if done {
		return nil
	}
	wasm, err := os.ReadFile(filepath.Join(m.dir, sha+".wasm"))
	if errors.Is(err, os.ErrNotExist) && m.shared != nil {
		wasm, err = m.fetch(ctx, sha)
	}
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s (upload it to /api/v1/modules first)", ErrModuleNotFound, sha)
	}
	if err != nil {
		return err
	}
	if got := sha256.Sum256(wasm); hex.EncodeToString(got[:]) != sha {
		return fmt.Errorf("module file %s is corrupt: its sha256 differs", sha)
	}
	compile := m.runner.Compile
	if trusted {
		compile = m.runner.CompileTrusted
	}
	if _, err := compile(ctx, wasm); err != nil {
		return fmt.Errorf("module %s: %w", sha, err)
	}
	m.mu.Lock()
	m.compiled[sha] = true
	m.sizes[sha] = int64(len(wasm))
	m.mu.Unlock()
	return nil
}

// resolve returns the sha of a built-in name or a registered sha, loading a
// module stored by an earlier run into the runner if needed.
func (m *modules) resolve(ctx context.Context, ref string) (string, error) {
	m.mu.Lock()
	sha, ok := m.byName[ref]
	m.mu.Unlock()
	if !ok {
		if !shaRE.MatchString(ref) {
			return "", fmt.Errorf("%w: module %q is neither a built-in job (%s) nor a sha256", ErrModuleNotFound, truncate(ref, 80), m.builtinNames())
		}
		sha = ref
	}
	return sha, m.ensureCompiled(ctx, sha)
}

func (m *modules) builtinNames() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.byName))
	for n := range m.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none built"
	}
	return fmt.Sprint(names)
}

// builtinEncodings is never nil, so that store does not compress a
// built-in itself: that costs seconds of CPU per module at every start.
func builtinEncodings(e map[string][]byte) map[string][]byte {
	if e == nil {
		return map[string][]byte{}
	}
	return e
}

// encodedPath returns the file of a registered module in the content
// coding enc. The first time in a process, it checks that the file decodes
// to the module; a file that does not is removed, so the module is served
// as it is from then on.
func (m *modules) encodedPath(sha, enc string) (string, error) {
	p, err := m.path(sha)
	if err != nil || enc == modenc.Identity {
		return p, err
	}
	ep := p + modenc.Suffix(enc)
	key := sha + modenc.Suffix(enc)
	m.mu.Lock()
	ok := m.checked[key]
	m.mu.Unlock()
	if ok {
		return ep, nil
	}
	f, err := os.Open(ep)
	if err != nil {
		return "", fmt.Errorf("%w: %s in %s", ErrModuleNotFound, sha, enc)
	}
	wasm, err := modenc.Decode(f, enc, maxModuleBytes)
	f.Close()
	if got := sha256.Sum256(wasm); err != nil || hex.EncodeToString(got[:]) != sha {
		m.log.Warn("compressed module file does not decode to its module; removed", "module", sha[:12], "coding", enc, "err", err)
		os.Remove(ep)
		return "", fmt.Errorf("%w: %s in %s", ErrModuleNotFound, sha, enc)
	}
	m.mu.Lock()
	m.checked[key] = true
	m.mu.Unlock()
	return ep, nil
}

// maxModuleBytes bounds a module decoded from a compressed file.
const maxModuleBytes = 256 << 20

// path returns the file of a registered module.
func (m *modules) path(sha string) (string, error) {
	if !shaRE.MatchString(sha) {
		return "", fmt.Errorf("%w: %q is not a sha256", ErrModuleNotFound, truncate(sha, 80))
	}
	p := filepath.Join(m.dir, sha+".wasm")
	if _, err := os.Stat(p); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		if m.shared == nil {
			return "", fmt.Errorf("%w: %s", ErrModuleNotFound, sha)
		}
		if _, err := m.fetch(ctx, sha); err != nil {
			return "", fmt.Errorf("%w: %s", ErrModuleNotFound, sha)
		}
	}
	return p, nil
}

// moduleBlob is an uploaded module's key in the shared blob store.
func moduleBlob(sha string) string { return "modules/" + sha + ".wasm" }

// fetchTimeout bounds fetching a module from the shared blob store.
const fetchTimeout = 30 * time.Second

// fetch copies a module another server took from the shared blob store
// into this server's own directory (with its compressed forms), after
// checking it is the module its sha names. A module missing there too is
// os.ErrNotExist.
func (m *modules) fetch(ctx context.Context, sha string) ([]byte, error) {
	wasm, err := blob.ReadAll(ctx, m.shared, moduleBlob(sha))
	if errors.Is(err, blob.ErrNotFound) {
		return nil, os.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(wasm); hex.EncodeToString(got[:]) != sha {
		return nil, fmt.Errorf("shared module %s is corrupt: its sha256 differs", sha)
	}
	if _, err := m.store(wasm, nil); err != nil {
		return nil, err
	}
	return wasm, nil
}

func (m *modules) list() []ModuleInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	builtin := map[string]bool{}
	for _, sha := range m.byName {
		builtin[sha] = true
	}
	out := make([]ModuleInfo, 0, len(m.sizes))
	for sha, size := range m.sizes {
		out = append(out, ModuleInfo{Name: m.nameLocked(sha), SHA256: sha, Size: size, Builtin: builtin[sha]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Builtin != out[j].Builtin {
			return out[i].Builtin
		}
		return out[i].Name+out[i].SHA256 < out[j].Name+out[j].SHA256
	})
	return out
}

// writeFileSync writes a file through a temporary name and fsyncs it, so a
// crash never leaves a half-written file under the final name.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
