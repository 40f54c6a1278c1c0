package fuzz

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"slices"
	"testing"
)

// A test cannot time Parse and Verify, so TestTokenWorkIsConstant checks the
// shape of their code instead (token/token.go and token/sign.go): the only
// early exit looks at public facts (the length, the dot's position), then a
// loop with no branch does all the work (every character decoded, the tag of
// every key computed and compared in constant time), and the answer is taken
// only after it. A change that adds an early exit on content, such as
// stopping at the first key that matches, fails here.
func TestTokenWorkIsConstant(t *testing.T) {
	fset := gotoken.NewFileSet()
	funcs := map[string]*ast.FuncDecl{}
	for _, name := range []string{"token.go", "sign.go"} {
		file, err := parser.ParseFile(fset, filepath.Join("..", "token", name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				funcs[fd.Name.Name] = fd
			}
		}
	}
	cases := []struct {
		fn       string
		loopOver string   // the expression the work loop ranges over
		public   []string // identifiers an early exit may look at
		calls    []string // calls the loop must make
	}{
		{"Parse", "5", []string{"len", "s", "Len"}, []string{"decodeMap"}},
		{"Verify", "s.macs", []string{"len", "tok", "SignedLen", "Len"}, []string{"s.tag", "subtle.ConstantTimeCompare"}},
	}
	for _, c := range cases {
		t.Run(c.fn, func(t *testing.T) {
			fd := funcs[c.fn]
			if fd == nil {
				t.Fatalf("no func %s in package token", c.fn)
			}
			stmts := fd.Body.List
			loop := slices.IndexFunc(stmts, func(s ast.Stmt) bool {
				r, ok := s.(*ast.RangeStmt)
				return ok && exprString(r.X) == c.loopOver
			})
			if loop < 0 {
				t.Fatalf("%s has no top-level loop over %s", c.fn, c.loopOver)
			}
			for _, s := range stmts[:loop] {
				if ifs, ok := s.(*ast.IfStmt); ok {
					if ids := identifiers(ifs.Cond); !isSubset(ids, c.public) {
						t.Errorf("%s exits early on %v, not only on public facts %v", c.fn, ids, c.public)
					}
					continue
				}
				if b := branches(s); len(b) > 0 {
					t.Errorf("%s branches before its work loop at %v", c.fn, fset.Position(b[0].Pos()))
				}
			}
			body := stmts[loop].(*ast.RangeStmt).Body
			if b := branches(body); len(b) > 0 {
				t.Errorf("%s's work loop branches at %v", c.fn, fset.Position(b[0].Pos()))
			}
			for _, call := range c.calls {
				if !mentions(body, call) {
					t.Errorf("%s's work loop does not use %s", c.fn, call)
				}
			}
		})
	}
	if b := branches(funcs["tag"].Body); len(b) > 0 {
		t.Errorf("tag branches at %v", fset.Position(b[0].Pos()))
	}
}

// branches returns the statements in n that can make work depend on data:
// conditionals, loops, jumps and returns.
func branches(n ast.Node) []ast.Node {
	var out []ast.Node
	ast.Inspect(n, func(n ast.Node) bool {
		switch b := n.(type) {
		case *ast.IfStmt, *ast.SwitchStmt, *ast.TypeSwitchStmt, *ast.SelectStmt, *ast.ForStmt, *ast.RangeStmt,
			*ast.ReturnStmt, *ast.BranchStmt:
			out = append(out, n)
		case *ast.BinaryExpr:
			if b.Op == gotoken.LAND || b.Op == gotoken.LOR {
				out = append(out, n) // short-circuit evaluation
			}
		}
		return true
	})
	return out
}

func identifiers(n ast.Node) []string {
	var out []string
	ast.Inspect(n, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && !slices.Contains(out, id.Name) {
			out = append(out, id.Name)
		}
		return true
	})
	return out
}

func isSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// mentions reports whether n contains the expression (an identifier or a
// selector) written as s.
func mentions(n ast.Node, s string) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if e, ok := n.(ast.Expr); ok && exprString(e) == s {
			found = true
		}
		return !found
	})
	return found
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.BasicLit:
		return e.Value
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return ""
}
