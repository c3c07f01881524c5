package github

import (
	"errors"
	"fmt"
	"testing"

	"github.com/slipwayhq/slipway/internal/contract"
)

// A refused archive entry is a terminal failure of the fetch step, as the
// controller always reported it, found through whatever wraps it.
func TestExtractErrorIsAFailure(t *testing.T) {
	err := fmt.Errorf("extract source of acme/shop@abc: %w", &ExtractError{Entry: "x/../../etc/passwd", Reason: "leaves the archive"})
	var f contract.Failure
	if !errors.As(err, &f) {
		t.Fatalf("%v is not a contract.Failure", err)
	}
	if f.FailedStep() != "fetch source" || f.FailedService() != "" || !f.Terminal() {
		t.Errorf("step %q service %q terminal %t, want %q, no service, terminal", f.FailedStep(), f.FailedService(), f.Terminal(), "fetch source")
	}
}
