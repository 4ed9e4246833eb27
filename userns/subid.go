package userns

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ParseSubIDs reads an /etc/subuid-format stream and returns the ranges that
// belong to the user, matched by name or by numeric id, in file order.
// Malformed lines are errors naming the line, because silently skipping them
// would silently change the map.
func ParseSubIDs(r io.Reader, name string, id int) ([]IDMap, error) {
	var out []IDMap
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want NAME:START:COUNT, got %q", n, line)
		}
		if f[0] != name && f[0] != strconv.Itoa(id) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || start < 0 || count <= 0 {
			return nil, fmt.Errorf("line %d: bad range %q", n, line)
		}
		out = append(out, IDMap{Host: start, Count: count})
	}
	return out, sc.Err()
}

// ReadSubIDs reads the caller's ranges from a file such as /etc/subuid. A
// missing file means no ranges.
func ReadSubIDs(path, name string, id int) ([]IDMap, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	r, err := ParseSubIDs(f, name, id)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return r, nil
}
