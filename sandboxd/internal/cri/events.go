package cri

import (
	"time"

	eventsv1 "flotilla.dev/proto/events/v1"
	"flotilla.dev/sandboxd/internal/store"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var podSubjects = map[string]string{
	"created": eventsv1.SubjectPodCreated, "started": eventsv1.SubjectPodStarted,
	"stopped": eventsv1.SubjectPodStopped, "removed": eventsv1.SubjectPodRemoved,
}

func (s *Service) publishPod(p *sandbox, state string) {
	if s.Bus == nil {
		return
	}
	m := p.cfg.GetMetadata()
	s.Bus.Publish(podSubjects[state], &eventsv1.Envelope{Payload: &eventsv1.Envelope_Pod{Pod: &eventsv1.PodEvent{
		PodId: p.id, Name: m.GetName(), Namespace: m.GetNamespace(), Uid: m.GetUid(), State: state,
	}}})
}

var ctrEvents = map[string]struct {
	subject string
	typ     runtimeapi.ContainerEventType
}{
	"created": {eventsv1.SubjectContainerCreated, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT},
	"started": {eventsv1.SubjectContainerStarted, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT},
	"exited":  {eventsv1.SubjectContainerExited, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT},
	"oom":     {eventsv1.SubjectContainerOOM, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT},
	"removed": {eventsv1.SubjectContainerRemoved, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT},
}

// publishContainer publishes a container lifecycle change; the CRI event
// carries the pod's status and its containers' statuses as the kubelet's
// evented PLEG expects. Called without c.mu held.
func (s *Service) publishContainer(c *container, state string) {
	if s.Bus == nil || c.infra {
		return
	}
	ev := ctrEvents[state]
	snap := c.snapshot()
	cri := &runtimeapi.ContainerEventResponse{
		ContainerId:        snap.ID,
		ContainerEventType: ev.typ,
		CreatedAt:          time.Now().UnixNano(),
	}
	if p, err := s.lookupPod(snap.PodID); err == nil {
		cri.PodSandboxStatus = s.podStatus(p)
		cri.ContainersStatuses = s.containerStatuses(snap.PodID)
	}
	data, _ := proto.Marshal(cri)
	name := ""
	if cfg := c.cfg; cfg != nil {
		name = cfg.GetMetadata().GetName()
	}
	s.Bus.Publish(ev.subject, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Container{Container: &eventsv1.ContainerEvent{
		ContainerId: snap.ID, PodId: snap.PodID, Name: name, State: state,
		ExitCode: snap.ExitCode, Reason: snap.Reason, CriEvent: data,
	}}})
}

// snapshot copies the record under the container's lock.
func (c *container) snapshot() store.Container {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.rec
}

// snapshot copies the record under the pod's lock.
func (p *sandbox) snapshot() store.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.rec
}
