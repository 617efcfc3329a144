// Command envcmd is a command module for the runner's tests: it prints what
// the host gave it as key<TAB>value lines, or misbehaves as its first
// argument says.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "fail":
			os.Stderr.WriteString(strings.Repeat("noise\n", 1000) + "it went wrong\n")
			os.Exit(3)
		case "flood":
			line := strings.Repeat("x", 1023) + "\n"
			for range 4096 {
				if _, err := os.Stdout.WriteString(line); err != nil {
					os.Exit(0) // pretend all is well: the host must notice
				}
			}
			return
		case "badcounter":
			os.Stderr.WriteString("reporter:counter:g,n\n")
			return
		case "loop":
			for {
			}
		}
	}
	in, _ := io.ReadAll(os.Stdin)
	fmt.Printf("argv\t%s\n", strings.Join(os.Args, " "))
	for _, e := range os.Environ() {
		fmt.Printf("env\t%s\n", e)
	}
	fmt.Printf("stdin\t%q\n", in)
	fmt.Printf("year\t%d\n", time.Now().Year())
	fmt.Println("no tab here")
	fmt.Print("last\tline without newline")
	os.Stderr.WriteString("reporter:counter:g,lines,2\nsome log\nreporter:counter:g,lines,3\nreporter:status:busy\n")
}
