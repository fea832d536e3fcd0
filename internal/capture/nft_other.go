//go:build !linux

package capture

import (
	"context"
	"errors"
)

// errNFTLinux: nftables is Linux's; google/nftables builds only there.
var errNFTLinux = errors.New("the nftables backend needs Linux")

// NFT is the nftables backend; elsewhere than on Linux it refuses.
type NFT struct{ NetNS string }

var _ Backend = NFT{}

func (NFT) Apply(context.Context, RuleSet) error { return errNFTLinux }
func (NFT) Cleanup(context.Context, bool) error  { return errNFTLinux }
func (NFT) NFTState(Family) (string, error)      { return "", errNFTLinux }
func (RuleSet) NFTText() (string, error)         { return "", errNFTLinux }
