package images

import (
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const streamBatch = 128

// StreamImages implements runtime.v1.ImageService: ListImages in batches.
func (s *Service) StreamImages(req *runtimeapi.StreamImagesRequest, st grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	imgs, err := s.List(req.GetFilter())
	if err != nil {
		return err
	}
	for len(imgs) > 0 {
		n := min(streamBatch, len(imgs))
		if err := st.Send(&runtimeapi.StreamImagesResponse{Images: imgs[:n]}); err != nil {
			return err
		}
		imgs = imgs[n:]
	}
	return nil
}
