// Command grep is a tabreduce job: it outputs the lines that match a regular
// expression, keyed by their byte offset in the input (zero-padded to 16
// digits so that keys sort in input order). Parameters: {"pattern": "RE2"}.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/tabreduce/tabreduce/wasm/mr"
)

// Job is the grep job.
var Job = mr.Job{Init: setParams, Map: mapLines, Reduce: identity}

func init() { mr.Register(Job) }

// main is not run in a reactor module; the SDK provides the exports.
func main() {}

var (
	pattern *regexp.Regexp
	lines   = mr.Counter("lines")
	matches = mr.Counter("matches")
	key     []byte
)

func setParams(params []byte) error {
	var p struct {
		Pattern string `json:"pattern"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return fmt.Errorf("grep parameters: %w", err)
	}
	if p.Pattern == "" {
		return errors.New(`grep parameters: "pattern" is required`)
	}
	re, err := regexp.Compile(p.Pattern)
	if err != nil {
		return fmt.Errorf("grep pattern: %w", err)
	}
	pattern = re
	return nil
}

func mapLines(chunk []byte, emit mr.Emit) error {
	return mr.ForEachLine(chunk, func(line []byte, offset uint64) error {
		lines.Add(1)
		if pattern.Match(line) {
			matches.Add(1)
			key = fmt.Appendf(key[:0], "%016d", offset)
			emit(key, line)
		}
		return nil
	})
}

func identity(key []byte, values mr.Values, emit mr.Emit) error {
	for values.Next() {
		emit(key, values.Value())
	}
	return nil
}
