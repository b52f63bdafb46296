package approval_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// envRequirePython turns TestVectorsPython's skip into a failure (CI sets
// it).
const envRequirePython = "APPROVAL_REQUIRE_PYTHON"

// TestVectorsPython: an independent implementation of docs/FORMATS.md,
// in Python with its standard library only, reproduces every hash of the
// sample trail and the actions, and every artifact's and token's outcome.
func TestVectorsPython(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv(envRequirePython) == "1" {
			t.Fatalf("python3 is not on the PATH and %s=1", envRequirePython)
		}
		t.Skipf("python3 is not on the PATH (apt-get install python3); %s=1 makes this a failure", envRequirePython)
	}
	// -I: isolated, so no user site-packages or PYTHON* variable can help.
	out, err := exec.CommandContext(t.Context(), py, "-I", filepath.Join(vectorDir, "verify.py"), vectorDir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "reproduced")
	t.Log(strings.TrimSpace(string(out)))
}
