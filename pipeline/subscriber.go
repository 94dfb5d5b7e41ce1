package pipeline

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// subscriber is a Watermill Subscriber fed by Deliver instead of a broker: the
// record processor of each shard is the producer, and it blocks until its batch
// is acked. That blocking is the consumer's only backpressure (the KCL polls again
// as soon as ProcessRecords returns), so the subscriber keeps no queue of its own.
type subscriber struct {
	mu     sync.Mutex
	topics map[string]*topic
	closed chan struct{}
	once   sync.Once
}

type topic struct {
	in         chan *message.Message // Deliver sends here; never closed
	subscribed chan struct{}         // closed once the router subscribed
	once       sync.Once
}

var _ message.Subscriber = (*subscriber)(nil)

func newSubscriber() *subscriber {
	return &subscriber{topics: map[string]*topic{}, closed: make(chan struct{})}
}

func (s *subscriber) topic(name string) *topic {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		t = &topic{in: make(chan *message.Message), subscribed: make(chan struct{})}
		s.topics[name] = t
	}
	return t
}

// Subscribe returns the channel the router reads a topic's messages from. The
// channel closes when ctx is done or the subscriber closes, which is how the
// router's handler loop ends; senders never see it closed because they send to
// the topic's inner channel.
func (s *subscriber) Subscribe(ctx context.Context, name string) (<-chan *message.Message, error) {
	select {
	case <-s.closed:
		return nil, errors.New("subscribe to closed pipeline subscriber")
	default:
	}
	t := s.topic(name)
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for {
			select {
			case msg := <-t.in:
				select {
				case out <- msg:
				case <-ctx.Done():
					msg.Nack()
					return
				case <-s.closed:
					msg.Nack()
					return
				}
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			}
		}
	}()
	t.once.Do(func() { close(t.subscribed) })
	return out, nil
}

func (s *subscriber) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}
