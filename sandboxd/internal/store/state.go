// Package store holds sandboxd's records of pods and containers, persisted in
// bbolt under root, and their state machines.
package store

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// PodState is the lifecycle state of a pod sandbox.
type PodState string

// Pod states. A pod is Ready from RunPodSandbox until StopPodSandbox, then
// NotReady until it is removed. There is no way back to Ready.
const (
	PodReady    PodState = "ready"
	PodNotReady PodState = "notready"
)

// podTransitions lists the allowed moves; staying in a state is allowed
// (Stop is idempotent).
var podTransitions = map[PodState][]PodState{
	PodReady:    {PodNotReady},
	PodNotReady: {},
}

// To checks the move from s to next.
func (s PodState) To(next PodState) error {
	return check(string(s), string(next), s == next, contains(podTransitions[s], next))
}

// ContainerState is the lifecycle state of a container.
type ContainerState string

// Container states.
//
//	created ──start──▶ running ──exit──▶ exited
//	   └──────────────exit──────────────────▲
//
// unknown is a record whose shim could not be reached after a restart; it
// may still move to exited once the exit is known.
const (
	ContainerCreated ContainerState = "created"
	ContainerRunning ContainerState = "running"
	ContainerExited  ContainerState = "exited"
	ContainerUnknown ContainerState = "unknown"
)

var containerTransitions = map[ContainerState][]ContainerState{
	ContainerCreated: {ContainerRunning, ContainerExited, ContainerUnknown},
	ContainerRunning: {ContainerExited, ContainerUnknown},
	ContainerUnknown: {ContainerExited, ContainerRunning},
	ContainerExited:  {},
}

// To checks the move from s to next.
func (s ContainerState) To(next ContainerState) error {
	return check(string(s), string(next), false, contains(containerTransitions[s], next))
}

func check(from, to string, same, ok bool) error {
	if same || ok {
		return nil
	}
	return fmt.Errorf("invalid transition %s → %s: %w", from, to, errdefs.ErrFailedPrecondition)
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
