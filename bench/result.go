package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Result is one benchmark run as rank 0 saw it: what ran, where, and one row per message
// size. It is what --json prints and what the plot command reads.
type Result struct {
	Benchmark string `json:"benchmark"` // subcommand: "latency", "allreduce", ...
	Title     string `json:"title"`     // OSU's title, e.g. "OSU MPI Latency Test"
	// Transport is what the ranks were asked for (GORUN_TRANSPORT or --transport: auto, shm,
	// unix, tcp); Path is what rank 0 actually uses to reach rank 1 ("shm", "unix", "tcp",
	// "self" in a world of one).
	Transport string `json:"transport"`
	Path      string `json:"path,omitempty"`
	Ranks     int    `json:"ranks"`
	// Notes are extra header lines ("window size: 64", the batching settings, the tuning).
	Notes []string `json:"notes,omitempty"`
	// Sized is false for barrier, whose rows have no size column.
	Sized   bool     `json:"sized"`
	Columns []string `json:"columns"` // the value columns, after Size
	Rows    []Row    `json:"rows"`
	// Label names the run in a plot legend; the plot command sets it from the file name.
	Label string `json:"label,omitempty"`
}

// Row is one message size: Values line up with Result.Columns.
type Row struct {
	Size   int       `json:"size"`
	Values []float64 `json:"values"`
}

// OSU's column widths (osu_util.h: FIELD_WIDTH 20, FLOAT_PRECISION 2; the size column 10,
// the iterations column 12).
const (
	sizeWidth  = 10
	fieldWidth = 20
	itersWidth = 12
)

// iterationsColumn is printed as an integer, as OSU does with -f.
const iterationsColumn = "Iterations"

// writeHeader prints OSU's header: the title line, gorun's lines, the column line.
func (r *Result) writeHeader(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (gorun-bench, OSU 7 method)\n", r.Title)
	fmt.Fprintf(&b, "# gorun: transport %s", r.Transport)
	if r.Path != "" {
		fmt.Fprintf(&b, " (path %s)", r.Path)
	}
	fmt.Fprintf(&b, ", %d ranks\n", r.Ranks)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "# %s\n", n)
	}
	if r.Sized {
		fmt.Fprintf(&b, "%-*s", sizeWidth, "# Size")
	} else {
		b.WriteString("#")
	}
	for i, c := range r.Columns {
		switch {
		case c == iterationsColumn:
			fmt.Fprintf(&b, "%*s", itersWidth, c)
		case i == 0 && !r.Sized:
			fmt.Fprintf(&b, " %s", c)
		default:
			fmt.Fprintf(&b, "%*s", fieldWidth, c)
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRow prints one row the way OSU's print_stats does.
func (r *Result) writeRow(w io.Writer, row Row) error {
	var b strings.Builder
	if r.Sized {
		fmt.Fprintf(&b, "%-*d", sizeWidth, row.Size)
	}
	for i, v := range row.Values {
		switch {
		case i < len(r.Columns) && r.Columns[i] == iterationsColumn:
			fmt.Fprintf(&b, "%*d", itersWidth, int(v))
		case i == 0 && !r.Sized:
			fmt.Fprintf(&b, "%*.2f", 17, v)
		default:
			fmt.Fprintf(&b, "%*.2f", fieldWidth, v)
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeText prints r in OSU's layout: header, then one row per size.
func (r *Result) writeText(w io.Writer) error {
	if err := r.writeHeader(w); err != nil {
		return err
	}
	for _, row := range r.Rows {
		if err := r.writeRow(w, row); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON prints r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// column returns the values of the named column by size, or false if r has no such column.
func (r *Result) column(name string) (sizes []int, values []float64, ok bool) {
	i := -1
	for j, c := range r.Columns {
		if c == name {
			i = j
		}
	}
	if i < 0 {
		return nil, nil, false
	}
	for _, row := range r.Rows {
		if i < len(row.Values) {
			sizes, values = append(sizes, row.Size), append(values, row.Values[i])
		}
	}
	return sizes, values, true
}

// ReadResult reads a result printed by WriteJSON, or a table in OSU's text layout: gorun-bench's
// own, the real OSU micro-benchmarks', or the C anchors' (lines starting with "#" are comments,
// the last one before the data names the columns, every data line is numbers, the first one the
// size).
func ReadResult(rd io.Reader) (*Result, error) {
	br := bufio.NewReader(rd)
	first, err := br.Peek(1)
	if err != nil {
		return nil, fmt.Errorf("empty input: %w", err)
	}
	if first[0] == '{' {
		var r Result
		if err := json.NewDecoder(br).Decode(&r); err != nil {
			return nil, fmt.Errorf("json result: %w", err)
		}
		return &r, nil
	}
	return parseTable(br)
}

var manySpaces = regexp.MustCompile(`\s{2,}`)

// parseTable reads OSU's text layout (see ReadResult).
func parseTable(rd io.Reader) (*Result, error) {
	r := &Result{Sized: true}
	var header string
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#"):
			text := strings.TrimSpace(strings.TrimPrefix(line, "#"))
			if r.Title == "" {
				r.Title = text
			}
			if len(r.Rows) == 0 {
				header = text
			}
			continue
		}
		if len(r.Rows) == 0 {
			r.setColumns(header)
		}
		row, err := r.parseRow(line)
		if err != nil {
			return nil, err
		}
		r.Rows = append(r.Rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(r.Rows) == 0 {
		return nil, errors.New("no data rows")
	}
	return r, nil
}

// setColumns splits a column line: on runs of spaces if it has any (OSU's "Latency (us)" has
// one space inside), else on single spaces (the anchors' "size_bytes one_way_latency_us").
func (r *Result) setColumns(header string) {
	var cols []string
	if manySpaces.MatchString(header) {
		cols = manySpaces.Split(header, -1)
	} else {
		cols = strings.Fields(header)
	}
	if len(cols) > 0 && strings.HasPrefix(strings.ToLower(cols[0]), "size") {
		cols = cols[1:]
	} else {
		r.Sized = false
	}
	r.Columns = cols
}

func (r *Result) parseRow(line string) (Row, error) {
	f := strings.Fields(line)
	var row Row
	if r.Sized {
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return row, fmt.Errorf("row %q: size: %w", line, err)
		}
		row.Size, f = n, f[1:]
	}
	for _, s := range f {
		if s == "-" { // no value at this size
			row.Values = append(row.Values, math.NaN())
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return row, fmt.Errorf("row %q: %w", line, err)
		}
		row.Values = append(row.Values, v)
	}
	return row, nil
}
