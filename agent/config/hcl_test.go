package config

import (
	"reflect"
	"testing"
)

// TestLoadHCLTwin: the HCL twin of testdata/full loads to exactly the
// same configuration as the JSON file, so both formats share one path.
func TestLoadHCLTwin(t *testing.T) {
	j, err := Load([]string{"testdata/full"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Load([]string{"testdata/full-hcl"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j, h) {
		t.Fatalf("HCL and JSON differ:\nJSON %+v\nHCL  %+v", j, h)
	}
}
