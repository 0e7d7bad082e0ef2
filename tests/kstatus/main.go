// Command kstatus-check reads ProfilePipeline objects with the kstatus
// reading each should get, and checks them against kstatus itself
// (sigs.k8s.io/cli-utils/pkg/kstatus/status, what Flux and kpt use).
//
//	go run . cases.json
//
// cases.json is written by the operator's status tests
// (operator/src/status/tests.rs), from the status the operator computes
// for each outcome; this program fails when kstatus reads any of them
// differently.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type testCase struct {
	Name   string          `json:"name"`
	Want   string          `json:"want"`
	Object json.RawMessage `json:"object"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kstatus-check CASES.json")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var cases []testCase
	if err := json.Unmarshal(data, &cases); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	if len(cases) == 0 {
		fmt.Fprintf(os.Stderr, "%s: no cases\n", os.Args[1])
		os.Exit(2)
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
