package proc

import (
	"errors"
	"testing"
)

// tail is fields 3..22 and a few more of a realistic stat line: state S,
// start time (field 22) 184020.
const tail = " S 1 5080 1724 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 184020 3133440 363 18446744073709551615\n"

func TestParseStat(t *testing.T) {
	tests := []struct {
		line  string
		pid   int
		comm  string
		state byte
		start uint64
	}{
		{"5086 (cat)" + tail, 5086, "cat", 'S', 184020},
		{"123 (a) b) c)" + tail, 123, "a) b) c", 'S', 184020},
		{"7 (x (y) z)" + tail, 7, "x (y) z", 'S', 184020},
		{"8 ()" + tail, 8, "", 'S', 184020},
		{"9 ( ) S 1 ) )" + tail, 9, " ) S 1 ) ", 'S', 184020},
		{"10 (Z)" + " Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 42", 10, "Z", 'Z', 42},
	}
	for _, tt := range tests {
		st, err := parseStat([]byte(tt.line))
		if err != nil {
			t.Errorf("parseStat(%q): %v", tt.line, err)
			continue
		}
		if st.PID != tt.pid || st.Comm != tt.comm || st.State != tt.state || st.StartTime != tt.start {
			t.Errorf("parseStat(%q) = %+v, want pid %d comm %q state %c start %d",
				tt.line, st, tt.pid, tt.comm, tt.state, tt.start)
		}
	}
}

func TestParseStatMalformed(t *testing.T) {
	for _, line := range []string{
		"",
		"123",
		"123 cat" + tail,
		"(cat)" + tail,
		"x (cat)" + tail,
		"-1 (cat)" + tail,
		"123(cat)" + tail,
		"123 (cat" + tail,
		"123 (cat)S 1",
		"123 (cat) S 1 2 3", // too few fields
		"123 (cat) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 42", // bad state
		"123 (cat) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -42", // bad start
	} {
		if st, err := parseStat([]byte(line)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want error", line, st)
		} else if !errors.Is(err, errBadStat) {
			t.Errorf("parseStat(%q) error %v does not match errBadStat", line, err)
		}
	}
}
