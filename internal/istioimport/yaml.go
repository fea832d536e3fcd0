package istioimport

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gitmesh/gitmesh/schema/model"
)

// node is a YAML node with its file and its field path ("spec.http[0]"),
// for report lines. Reading a key through get marks it read; what no
// converter read is reported as dropped by unread, so the report lists
// every field the output lacks without a converter having to remember
// to say so.
type node struct {
	n    *yaml.Node
	file string
	path string
	read map[*yaml.Node]bool
}

// pos is where the node starts in its file.
func (x node) pos() model.Pos {
	if x.n == nil {
		return model.Pos{File: x.file}
	}
	return model.Pos{File: x.file, Line: x.n.Line, Col: x.n.Column}
}

func (x node) ok() bool { return x.n != nil }

// deref follows YAML aliases (*name) to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (x node) child(n *yaml.Node, path string) node {
	return node{n: deref(n), file: x.file, path: path, read: x.read}
}

// get returns the value of key in a mapping and marks the key read. The
// result is not ok when the key is absent or the node is no mapping.
func (x node) get(key string) node {
	if x.n == nil || x.n.Kind != yaml.MappingNode {
		return node{file: x.file, path: join(x.path, key), read: x.read}
	}
	for i := 0; i+1 < len(x.n.Content); i += 2 {
		if x.n.Content[i].Value == key {
			x.read[x.n.Content[i]] = true
			c := x.child(x.n.Content[i+1], join(x.path, key))
			if c.n != nil && c.n.Tag == "!!null" {
				c.n = nil
			}
			return c
		}
	}
	return node{file: x.file, path: join(x.path, key), read: x.read}
}

// has reports whether key is present, without marking it read.
func (x node) has(key string) bool {
	if x.n == nil || x.n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(x.n.Content); i += 2 {
		if x.n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// markAll marks the node and everything below it read: for values a
// converter reports itself (with a better reason than "not supported").
func (x node) markAll() {
	// Aliases make the tree a graph: each node is walked once, or a
	// "billion laughs" document would take exponential time.
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		n = deref(n)
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		for _, c := range n.Content {
			x.read[c] = true
			walk(c)
		}
	}
	walk(x.n)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// str is the scalar value, "" when absent.
func (x node) str() string {
	if x.n == nil || x.n.Kind != yaml.ScalarNode {
		return ""
	}
	return x.n.Value
}

// int reads an integer scalar; ok is false when absent or not a number.
func (x node) int() (int, bool) {
	if x.n == nil || x.n.Kind != yaml.ScalarNode {
		return 0, false
	}
	v, err := strconv.Atoi(x.n.Value)
	return v, err == nil
}

// float reads a number scalar.
func (x node) float() (float64, bool) {
	if x.n == nil || x.n.Kind != yaml.ScalarNode {
		return 0, false
	}
	v, err := strconv.ParseFloat(x.n.Value, 64)
	return v, err == nil
}

// list returns the items of a sequence.
func (x node) list() []node {
	if x.n == nil || x.n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]node, len(x.n.Content))
	for i, c := range x.n.Content {
		out[i] = x.child(c, x.path+"["+strconv.Itoa(i)+"]")
	}
	return out
}

// strs reads a sequence of scalars.
func (x node) strs() []string {
	var out []string
	for _, c := range x.list() {
		out = append(out, c.str())
	}
	return out
}

// keyed is one entry of a mapping, in file order.
type keyed struct {
	key string
	val node
}

// entries returns a mapping's entries in file order and marks them read.
func (x node) entries() []keyed {
	if x.n == nil || x.n.Kind != yaml.MappingNode {
		return nil
	}
	var out []keyed
	for i := 0; i+1 < len(x.n.Content); i += 2 {
		k := x.n.Content[i]
		x.read[k] = true
		out = append(out, keyed{k.Value, x.child(x.n.Content[i+1], join(x.path, k.Value))})
	}
	return out
}

// strMap reads a mapping of scalars (labels).
func (x node) strMap() map[string]string {
	es := x.entries()
	if es == nil {
		return nil
	}
	out := map[string]string{}
	for _, e := range es {
		out[e.key] = e.val.str()
	}
	return out
}

// unread calls f for every mapping key below x that no converter read,
// topmost only: a dropped block is one line, not one per field.
func (x node) unread(f func(n node)) {
	seen := map[*yaml.Node]bool{} // once per node, as in markAll
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		n = deref(n)
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := join(path, k.Value)
				if !x.read[k] {
					f(node{n: k, file: x.file, path: p, read: x.read})
					continue
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(x.n, x.path)
}

// document is one YAML document of an input file.
type document struct {
	root node
}

// readDocuments splits a multi-document YAML file. A syntax error ends the
// file: yaml.v3 cannot resynchronise after one, so the documents before it
// are kept and the error is returned for the report.
func readDocuments(file string, data []byte) ([]document, *syntaxError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	read := map[*yaml.Node]bool{}
	var docs []document
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, yamlErr(err)
		}
		if len(n.Content) == 0 {
			continue
		}
		root := node{n: deref(n.Content[0]), file: file, read: read}
		if root.n.Kind == yaml.ScalarNode && root.n.Tag == "!!null" {
			continue
		}
		docs = append(docs, document{root: root})
	}
}

// syntaxError is a YAML syntax error with the line yaml.v3 names.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return e.msg }

// yamlErr reads yaml.v3's "yaml: line N: MESSAGE" into a line and a
// message; the caller names the file.
func yamlErr(err error) *syntaxError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &syntaxError{msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				e.line, e.msg = l, after
			}
		}
	}
	return e
}
