package approvalhttp

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestFmtAmount: amounts in their currency's minor units, digits grouped.
func TestFmtAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount   float64
		currency string
		want     string
	}{
		{125000, "USD", "125,000.00 USD"},
		{5000, "JPY", "5,000 JPY"},
		{1000, "KWD", "1,000.000 KWD"},
		{999.5, "EUR", "999.50 EUR"},
		{1234567.891, "USD", "1,234,567.89 USD"},
		{-42, "USD", "-42.00 USD"},
		{100, "", "100"},
		{1e6, "XYZ", "1,000,000 XYZ"},
		{0.5, "ABC", "0.5 ABC"},
	} {
		require.Equal(t, tc.want, fmtAmount(&approval.Cost{Amount: tc.amount, Currency: tc.currency}), "%v %s", tc.amount, tc.currency)
	}
	require.Empty(t, fmtAmount(nil))
}
