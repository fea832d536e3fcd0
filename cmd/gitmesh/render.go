package main

import "github.com/spf13/cobra"

// newRenderCmd is filled in once render lands.
func newRenderCmd(_ *globalFlags) *cobra.Command {
	return &cobra.Command{Use: "render [DIR]", Short: "Render a mesh repository into Envoy configuration", Hidden: true}
}
