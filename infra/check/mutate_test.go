package check

import (
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Helpers that change a freshly parsed module, so that each negative test can show a check
// failing on a realistic configuration.

// body returns the body of a resource ("ibm_x.y", "data.ibm_x.y") or, with path, of a nested
// block: "name" is the first block of that type, "name#2" the third, "dynamic:name" a dynamic
// block with that label, "content" its content block.
func body(t *testing.T, m *Module, addr string, path ...string) *hclsyntax.Body {
	t.Helper()
	r := m.Resource(addr)
	if r == nil {
		t.Fatalf("no resource %s", addr)
	}
	b := r.Block.Body
	for _, step := range path {
		typ, label, index := step, "", 0
		if i := strings.IndexByte(step, '#'); i >= 0 {
			typ = step[:i]
			index, _ = strconv.Atoi(step[i+1:])
		}
		if rest, ok := strings.CutPrefix(typ, "dynamic:"); ok {
			typ, label = "dynamic", rest
		}
		var found *hclsyntax.Block
		n := 0
		for _, blk := range b.Blocks {
			if blk.Type != typ || label != "" && (len(blk.Labels) != 1 || blk.Labels[0] != label) {
				continue
			}
			if n == index {
				found = blk
				break
			}
			n++
		}
		if found == nil {
			t.Fatalf("%s: no block %s", addr, strings.Join(path, "/"))
		}
		b = found.Body
	}
	return b
}

func expr(t *testing.T, src string) hclsyntax.Expression {
	t.Helper()
	e, diags := hclsyntax.ParseExpression([]byte(src), "mutation.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse %q: %s", src, diags.Error())
	}
	return e
}

func setAttr(t *testing.T, b *hclsyntax.Body, name, src string) {
	t.Helper()
	b.Attributes[name] = &hclsyntax.Attribute{Name: name, Expr: expr(t, src)}
}

func delAttr(t *testing.T, b *hclsyntax.Body, name string) {
	t.Helper()
	if _, ok := b.Attributes[name]; !ok {
		t.Fatalf("no attribute %s to delete", name)
	}
	delete(b.Attributes, name)
}

// delBlocks removes the nested blocks of a type (and dynamic blocks generating it).
func delBlocks(t *testing.T, b *hclsyntax.Body, typ string) {
	t.Helper()
	var keep hclsyntax.Blocks
	for _, blk := range b.Blocks {
		if blk.Type == typ || blk.Type == "dynamic" && len(blk.Labels) == 1 && blk.Labels[0] == typ {
			continue
		}
		keep = append(keep, blk)
	}
	if len(keep) == len(b.Blocks) {
		t.Fatalf("no %s block to delete", typ)
	}
	b.Blocks = keep
}

func setLocal(t *testing.T, m *Module, name, src string) {
	t.Helper()
	if _, ok := m.Locals[name]; !ok {
		t.Fatalf("no local %s", name)
	}
	m.Locals[name] = &hclsyntax.Attribute{Name: name, Expr: expr(t, src)}
}

// setForEach replaces a resource's for_each.
func setForEach(t *testing.T, m *Module, addr, src string) {
	t.Helper()
	r := m.Resource(addr)
	if r == nil || r.ForEach == nil {
		t.Fatalf("no resource %s with for_each", addr)
	}
	setAttr(t, r.Block.Body, "for_each", src)
	r.ForEach = r.Block.Body.Attributes["for_each"].Expr
}

// overrideLocal replaces a local with an expression of its original value: each %s in src
// stands for that value (kept under the name <name>_original).
func overrideLocal(t *testing.T, m *Module, name, src string) {
	t.Helper()
	orig, ok := m.Locals[name]
	if !ok {
		t.Fatalf("no local %s", name)
	}
	m.Locals[name+"_original"] = &hclsyntax.Attribute{Name: name + "_original", Expr: orig.Expr}
	setLocal(t, m, name, strings.ReplaceAll(src, "%s", "local."+name+"_original"))
}

func delResource(t *testing.T, m *Module, addr string) {
	t.Helper()
	for i, r := range m.Resources {
		if r.Addr() == addr {
			m.Resources = append(m.Resources[:i], m.Resources[i+1:]...)
			return
		}
	}
	t.Fatalf("no resource %s to delete", addr)
}

func hclInitialPos() hcl.Pos { return hcl.InitialPos }
