package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func small(t *testing.T, src string) *Module {
	t.Helper()
	m, err := LoadFiles("small", map[string][]byte{"main.tf": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEvaluateExpandsInstances(t *testing.T) {
	m := small(t, `
variable "n" {
  type    = number
  default = 2
}
variable "names" {
  type = set(string)
}
locals {
  doubled = var.n * 2
  first   = one([for s in data.ibm_en_sources.all.sources : s.id if s.type == "periodic-timer"])
  url     = "${aws_thing.single.endpoint}/path"
}
resource "aws_thing" "single" {}
resource "aws_thing" "counted" {
  count = local.doubled
  name  = "c-${count.index}"
}
resource "aws_thing" "keyed" {
  for_each = var.names
  name     = "k-${each.key}"
  parent   = aws_thing.counted[1].id

  dynamic "tag" {
    for_each = { a = 1, b = 2 }
    iterator = kv
    content {
      key   = kv.key
      value = kv.value
    }
  }
}
data "ibm_en_sources" "all" {}
`)
	e, err := Evaluate(m, map[string]cty.Value{"names": cty.SetVal([]cty.Value{cty.StringVal("x"), cty.StringVal("y")})})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, i := range e.Instances {
		addrs = append(addrs, i.Addr())
	}
	want := `aws_thing.single aws_thing.counted[0] aws_thing.counted[1] aws_thing.counted[2] aws_thing.counted[3] aws_thing.keyed["x"] aws_thing.keyed["y"] data.ibm_en_sources.all`
	if got := strings.Join(addrs, " "); got != want {
		t.Errorf("instances\n got %s\nwant %s", got, want)
	}
	if got := e.Locals["first"]; !got.RawEquals(cty.StringVal(PeriodicTimerSource("data.ibm_en_sources.all"))) {
		t.Errorf("periodic-timer source = %#v", got)
	}
	if got, _ := knownString(e.Locals["url"]); got != "«aws_thing.single.endpoint»/path" {
		t.Errorf("url = %q", got)
	}
	keyed := e.Lookup(`aws_thing.keyed["y"]`)
	if v, _ := keyed.Value("name"); !v.RawEquals(cty.StringVal("k-y")) {
		t.Errorf("name = %#v", v)
	}
	parent, _ := keyed.Value("parent")
	if ref, ok := RefOf(parent); !ok || ref.Addr != "aws_thing.counted[1]" || ref.Attr != "id" {
		t.Errorf("parent = %#v", parent)
	}
	tags, err := keyed.Blocks("tag")
	if err != nil || len(tags) != 2 {
		t.Fatalf("tags = %v, %v", tags, err)
	}
	if v, _ := tags[1].Value("key"); !v.RawEquals(cty.StringVal("b")) {
		t.Errorf("second tag key = %#v", v)
	}
	if v, _ := keyed.Value("absent"); !v.IsNull() {
		t.Errorf("an unset attribute must read as null, got %#v", v)
	}
}

// try and can must not turn a local that is not evaluated yet into their fallback: the
// evaluator waits for what an expression names before evaluating it.
func TestEvaluateWaitsBeforeTry(t *testing.T) {
	for i := 0; i < 20; i++ {
		m := small(t, `
locals {
  a = try(local.b.c, "fallback")
  b = { c = local.d }
  d = "value"
  e = can(local.b.c)
}
`)
		e, err := Evaluate(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := knownString(e.Locals["a"]); got != "value" {
			t.Fatalf("a = %q, want value", got)
		}
		if b, _ := knownBool(e.Locals["e"]); !b {
			t.Fatal("can(local.b.c) = false")
		}
	}
}

func TestYAMLAndFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.yaml"), []byte("keys:\n  - crn: a\n  - crn: b\nn: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadFiles(dir, map[string][]byte{"main.tf": []byte(`
locals {
  doc  = yamldecode(file("f.yaml"))
  crns = [for k in local.doc.keys : k.crn]
}
`)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Evaluate(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := stringList(e.Locals["crns"]); strings.Join(got, ",") != "a,b" {
		t.Errorf("crns = %v", got)
	}
	m2, _ := LoadFiles(dir, map[string][]byte{"main.tf": []byte("locals {\n  x = file(\"missing.yaml\")\n}\n")})
	if _, err := Evaluate(m2, nil); err == nil || !strings.Contains(err.Error(), "no file at missing.yaml") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestEvaluateFailures(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"cycle", `
locals {
  a = local.b
  b = local.a
}`, "cannot evaluate"},
		{"unknown count", `
resource "aws_thing" "t" {
  count = length(filemd5("f"))
}`, "aws_thing.t: count must be a known, non-negative number"},
		{"unknown function", `
locals {
  a = nosuchfunction(1)
}`, "nosuchfunction"},
		{"required variable", `
variable "x" {
  type = string
}`, "variable x is required"},
		{"failed validation", `
variable "x" {
  type    = number
  default = 3
  validation {
    condition     = var.x > 5
    error_message = "x must exceed 5."
  }
}`, "x must exceed 5."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := small(t, c.src)
			_, err := Evaluate(m, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"duplicate resource", "resource \"a\" \"b\" {}\nresource \"a\" \"b\" {}\n", "duplicate resource a.b"},
		{"count and for_each", "resource \"a\" \"b\" {\n  count    = 1\n  for_each = {}\n}\n", "both count and for_each"},
		{"unknown block", "widget \"x\" {}\n", `unexpected top-level block "widget"`},
		{"syntax error", "resource \"a\" {\n", "parse main.tf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadFiles("bad", map[string][]byte{"main.tf": []byte(c.src)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestParseRef(t *testing.T) {
	cases := []struct {
		in, addr, attr, rest string
		ok                   bool
	}{
		{`«ibm_x.y.id»`, "ibm_x.y", "id", "", true},
		{`«ibm_x.y["k-1"].endpoint»/tick`, `ibm_x.y["k-1"]`, "endpoint", "/tick", true},
		{`«ibm_x.y[3].crn»`, "ibm_x.y[3]", "crn", "", true},
		{`«data.ibm_en_sources.all.sources[periodic-timer].id»`, "data.ibm_en_sources.all", "sources[periodic-timer].id", "", true},
		{`https://«ibm_x.y.host»`, "", "", "", false},
		{`plain`, "", "", "", false},
	}
	for _, c := range cases {
		r, rest, ok := ParseRef(c.in)
		if ok != c.ok || ok && (r.Addr != c.addr || r.Attr != c.attr || rest != c.rest) {
			t.Errorf("ParseRef(%q) = %+v, %q, %v", c.in, r, rest, ok)
		}
	}
}

func TestFunctions(t *testing.T) {
	cases := []struct {
		src  string
		want cty.Value
	}{
		{`length("abc")`, cty.NumberIntVal(3)},
		{`length(["a", "b"])`, cty.NumberIntVal(2)},
		{`alltrue([true, true])`, cty.True},
		{`alltrue([true, false])`, cty.False},
		{`anytrue([false, true])`, cty.True},
		{`one([])`, cty.NullVal(cty.DynamicPseudoType)},
		{`one(["x"])`, cty.StringVal("x")},
		{`nonsensitive("s")`, cty.StringVal("s")},
		{`startswith("keyguard", "key")`, cty.True},
		{`endswith("keyguard", "key")`, cty.False},
		{`can(regex("^a", "abc"))`, cty.True},
		{`try(local.missing, "fallback")`, cty.StringVal("fallback")},
		{`coalesce(null, "b")`, cty.StringVal("b")},
	}
	ctx := (&Eval{Module: &Module{}, Vars: map[string]cty.Value{}, Locals: map[string]cty.Value{}}).context()
	for _, c := range cases {
		e, diags := hclsyntax.ParseExpression([]byte(c.src), "f.tf", hclInitialPos())
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		v, diags := e.Value(ctx)
		if diags.HasErrors() {
			t.Errorf("%s: %s", c.src, diags.Error())
			continue
		}
		if !v.RawEquals(c.want) && !(v.IsNull() && c.want.IsNull()) {
			t.Errorf("%s = %#v, want %#v", c.src, v, c.want)
		}
	}
	e, _ := hclsyntax.ParseExpression([]byte(`one(["a", "b"])`), "f.tf", hclInitialPos())
	if _, diags := e.Value(ctx); !diags.HasErrors() {
		t.Error("one() of two elements must fail")
	}
	e, _ = hclsyntax.ParseExpression([]byte(`filemd5("x")`), "f.tf", hclInitialPos())
	if v, _ := e.Value(ctx); v.IsKnown() {
		t.Error("file functions must return unknown values")
	}
}

func TestFormatSource(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"formatted", "resource \"a\" \"b\" {\n  x   = 1\n  yyy = 2\n}\n", ""},
		{"misaligned", "resource \"a\" \"b\" {\n  x = 1\n  yyy = 2\n}\n", "not formatted"},
		{"indentation", "resource \"a\" \"b\" {\n    x = 1\n}\n", "not formatted"},
		{"interpolation only", "resource \"a\" \"b\" {\n  x = \"${var.y}\"\n}\n", "interpolation-only"},
		{"does not parse", "resource \"a\" \"b\" {\n", "does not parse"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(FormatSource("x.tf", []byte(c.src)), "\n")
			if c.want == "" && got != "" || !strings.Contains(got, c.want) {
				t.Errorf("FormatSource = %q, want %q", got, c.want)
			}
		})
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.tf"), []byte("locals {\n  a=1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := FormatProblems(dir); err != nil || len(p) != 1 {
		t.Errorf("FormatProblems = %v, %v; want one problem", p, err)
	}
}

func TestCallsFail(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, m *Module)
		want   string
	}{
		{"required variable not passed", func(t *testing.T, m *Module) {
			delete(m.Calls["keyguard"].Block.Body.Attributes, "bucket_name")
		}, "required variable bucket_name is not passed"},
		{"unknown argument", func(t *testing.T, m *Module) {
			setAttr(t, m.Calls["keyguard"].Block.Body, "bucket", `"x"`)
		}, "argument bucket is not a variable"},
		{"unknown output", func(t *testing.T, m *Module) {
			setAttr(t, m.Outputs["bucket_name"].Body, "value", `module.keyguard.bucket`)
		}, "module keyguard has no output bucket"},
		{"missing source", func(t *testing.T, m *Module) {
			m.Calls["keyguard"].Source = "./nowhere"
		}, "module keyguard: load module"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, err := Load(exampleDir(t))
			if err != nil {
				t.Fatal(err)
			}
			c.mutate(t, root)
			got := strings.Join(Calls(root), "\n")
			if !strings.Contains(got, c.want) {
				t.Errorf("Calls = %q, want %q", got, c.want)
			}
		})
	}
}
