package errview

import (
	"testing"

	"go.uber.org/goleak"
)

// Scans run in goroutines shared by requests (viewCache): none may outlive
// the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
