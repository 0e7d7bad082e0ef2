// Command kstatus-check reads ProfilePipeline objects with the kstatus
// reading each should get, and checks them against kstatus itself
// (sigs.k8s.io/cli-utils/pkg/kstatus/status, what Flux and kpt use).
//
//	go run . cases.json [DIR...]
//
// cases.json is written by the operator's status tests
// (operator/src/status/tests.rs), from the status the operator computes
// for each outcome; a directory holds the statuses the integration and e2e
// tests read from the API server (KITH_STATUS_SAMPLES). This program fails
// when kstatus reads any of them differently.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type testCase struct {
	Name   string          `json:"name"`
	Want   string          `json:"want"`
	Object json.RawMessage `json:"object"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kstatus-check CASES.json|DIR...")
		os.Exit(2)
	}
	var cases []testCase
	for _, arg := range os.Args[1:] {
		found, err := load(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if len(found) == 0 {
			fmt.Fprintf(os.Stderr, "%s: no cases\n", arg)
			os.Exit(2)
		}
		cases = append(cases, found...)
	}
	failed := 0
	for _, c := range cases {
		// Decoded as the API machinery decodes objects (integers as int64).
		var object unstructured.Unstructured
		if err := object.UnmarshalJSON(c.Object); err != nil {
			fmt.Printf("FAIL %s: %v\n", c.Name, err)
			failed++
			continue
		}
		result, err := status.Compute(&object)
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", c.Name, err)
			failed++
			continue
		}
		if string(result.Status) != c.Want {
			fmt.Printf("FAIL %s: kstatus reads %s (%s), want %s\n", c.Name, result.Status, result.Message, c.Want)
			failed++
			continue
		}
		fmt.Printf("ok   %s: %s\n", c.Name, result.Status)
	}
	fmt.Printf("kstatus: %d passed, %d failed\n", len(cases)-failed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

// load reads a file holding a list of cases, or a directory of files
// holding one case each (the statuses the e2e scenarios recorded).
func load(path string) ([]testCase, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var cases []testCase
		if err := json.Unmarshal(data, &cases); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return cases, nil
	}
	files, err := filepath.Glob(filepath.Join(path, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var cases []testCase
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var c testCase
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		cases = append(cases, c)
	}
	return cases, nil
}
