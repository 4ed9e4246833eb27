package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

var statusOrder = []string{"PASS", "FAIL", "ERROR", "TIMEOUT", "SKIP"}

func readResults(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		var r Result
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Name != "" {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	return rs, sc.Err()
}

// cmdSummary prints the totals of a run, or (--markdown) a table of it.
func cmdSummary(args []string) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	results := fs.String("results", "", "results.jsonl")
	markdown := fs.Bool("markdown", false, "print a Markdown table")
	label := fs.String("label", "result", "heading of the result column (--markdown)")
	extra := fs.String("extra-column", "", "add an empty column with this heading (--markdown)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs, err := readResults(*results)
	if err != nil {
		return err
	}
	if *markdown {
		printMarkdown(rs, *label, *extra)
		return nil
	}

	byStatus := map[string][]string{}
	var pass, fail, skip, todo int
	var secs float64
	var cleaned []string
	for _, r := range rs {
		byStatus[r.Status] = append(byStatus[r.Status], r.Name)
		pass += r.Pass
		fail += r.Fail
		skip += r.Skip
		todo += r.Todo
		secs += r.Seconds
		if c := r.Cleanup.String(); c != "" {
			cleaned = append(cleaned, r.Name)
		}
	}
	var counts []string
	for _, s := range statusOrder {
		counts = append(counts, fmt.Sprintf("%d %s", len(byStatus[s]), s))
	}
	fmt.Printf("tests: %d (%s)\n", len(rs), strings.Join(counts, ", "))
	tp := fmt.Sprintf("test points: %d ok, %d not ok, %d skipped", pass, fail, skip)
	if todo > 0 {
		tp += fmt.Sprintf(", %d todo", todo)
	}
	fmt.Printf("%s; %.0f s in the tests\n", tp, secs)
	for _, s := range statusOrder {
		if len(byStatus[s]) > 0 {
			fmt.Printf("%-7s %s\n", s+":", strings.Join(byStatus[s], " "))
		}
	}
	if len(cleaned) > 0 {
		fmt.Printf("cleanup notes (containers, processes, mounts or cgroups left behind; see the lines above): %s\n", strings.Join(cleaned, " "))
	}
	return nil
}

func printMarkdown(rs []Result, label, extra string) {
	head := "| test | " + label + " (ok/not ok/skip) | note |"
	sep := "|---|---|---|"
	if extra != "" {
		head += " " + extra + " |"
		sep += "---|"
	}
	fmt.Println(head)
	fmt.Println(sep)
	for _, r := range rs {
		note := r.Reason
		if c := r.Cleanup.String(); c != "" {
			note = strings.TrimSpace(note + " [cleanup: " + c + "]")
		}
		note = strings.ReplaceAll(note, "|", `\|`)
		row := fmt.Sprintf("| %s | %s %d/%d/%d | %s |", r.Name, r.Status, r.Pass, r.Fail, r.Skip, note)
		if extra != "" {
			row += "  |"
		}
		fmt.Println(row)
	}
}
