package xds

import "github.com/gitmesh/gitmesh/internal/snapshot"

// Resource, ClassConfig and Update are the snapshot types render produces:
// the server indexes render's objects as they are, with no conversion. The
// aliases keep the server's API readable on its own.
type (
	// Resource is snapshot.Resource: one marshalled xDS resource.
	Resource = snapshot.Resource
	// ClassConfig is snapshot.ClassConfig: everything one class receives.
	ClassConfig = snapshot.ClassConfig
	// Update is snapshot.Update: one revision for every class.
	Update = snapshot.Update
)
