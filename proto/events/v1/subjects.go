package eventsv1

// Every NATS subject Flotilla publishes on, in one place.
// Form: flotilla.v1.<daemon>.<kind>.<verb>
const (
	// SubjectAll matches every Flotilla subject.
	SubjectAll = "flotilla.v1.>"

	// Daemon lifecycle: <daemon> is criproxy, imaged, sandboxd or netd.
	SubjectCriproxyStarted = "flotilla.v1.criproxy.daemon.started"
	SubjectImagedStarted   = "flotilla.v1.imaged.daemon.started"
	SubjectSandboxdStarted = "flotilla.v1.sandboxd.daemon.started"
	SubjectNetdStarted     = "flotilla.v1.netd.daemon.started"

	// Pods (sandboxd).
	SubjectPodCreated = "flotilla.v1.sandboxd.pod.created"
	SubjectPodStarted = "flotilla.v1.sandboxd.pod.started"
	SubjectPodStopped = "flotilla.v1.sandboxd.pod.stopped"
	SubjectPodRemoved = "flotilla.v1.sandboxd.pod.removed"

	// Containers (sandboxd).
	SubjectContainerCreated = "flotilla.v1.sandboxd.container.created"
	SubjectContainerStarted = "flotilla.v1.sandboxd.container.started"
	SubjectContainerExited  = "flotilla.v1.sandboxd.container.exited"
	SubjectContainerRemoved = "flotilla.v1.sandboxd.container.removed"
	SubjectContainerOOM     = "flotilla.v1.sandboxd.container.oom"
	// SubjectContainerAll matches every container event (GetContainerEvents).
	SubjectContainerAll = "flotilla.v1.sandboxd.container.*"
	// SubjectPodAll matches every pod event.
	SubjectPodAll = "flotilla.v1.sandboxd.pod.*"

	// Images (imaged).
	SubjectImagePulling  = "flotilla.v1.imaged.image.pulling"
	SubjectImageProgress = "flotilla.v1.imaged.image.progress"
	SubjectImagePulled   = "flotilla.v1.imaged.image.pulled"
	SubjectImageFailed   = "flotilla.v1.imaged.image.failed"
	SubjectImageRemoved  = "flotilla.v1.imaged.image.removed"

	// Networks (netd).
	SubjectNetworkSetup         = "flotilla.v1.netd.network.setup"
	SubjectNetworkTeardown      = "flotilla.v1.netd.network.teardown"
	SubjectNetworkFailed        = "flotilla.v1.netd.network.failed"
	SubjectNetworkConfigChanged = "flotilla.v1.netd.network.config_changed"
)

// DaemonStartedSubject returns the started subject of a daemon by name.
func DaemonStartedSubject(daemon string) string {
	return "flotilla.v1." + daemon + ".daemon.started"
}
