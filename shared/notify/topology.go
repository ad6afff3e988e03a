package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/IBM/event-notifications-go-admin-sdk/eventnotificationsv1"
	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/shared/preflight"
)

var _ preflight.Topology = (*Client)(nil)

// pageSize is how many items a list call asks for at a time.
const pageSize = 100

// maxPages bounds a listing (10,000 items of a kind).
const maxPages = 100

// Topology reads the instance's sources, topics (their rules and subscriptions) and destinations
// (with the Code Engine configuration of ibmce ones, and the addresses of email subscriptions),
// for the deployment preflight. It needs Reader on the instance, which the functions' own
// identities do not hold. Each call is bounded by the client's Timeout.
func (c *Client) Topology(ctx context.Context) (preflight.ENTopology, error) {
	var t preflight.ENTopology
	in := core.StringPtr(c.instanceID)
	err := pages(func(off int64) (int, int64, error) {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		l, resp, err := c.svc.ListSourcesWithContext(ctx, &eventnotificationsv1.ListSourcesOptions{InstanceID: in, Limit: core.Int64Ptr(pageSize), Offset: core.Int64Ptr(off)})
		if err != nil {
			return 0, 0, classify("list sources", "", resp, err)
		}
		for _, s := range l.Sources {
			t.Sources = append(t.Sources, preflight.ENSource{ID: str(s.ID), Name: str(s.Name), Type: str(s.Type), Enabled: s.Enabled != nil && *s.Enabled})
		}
		return len(l.Sources), i64(l.TotalCount), nil
	})
	if err != nil {
		return t, err
	}
	var topicIDs []string
	err = pages(func(off int64) (int, int64, error) {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		l, resp, err := c.svc.ListTopicsWithContext(ctx, &eventnotificationsv1.ListTopicsOptions{InstanceID: in, Limit: core.Int64Ptr(pageSize), Offset: core.Int64Ptr(off)})
		if err != nil {
			return 0, 0, classify("list topics", "", resp, err)
		}
		for _, x := range l.Topics {
			topicIDs = append(topicIDs, str(x.ID))
		}
		return len(l.Topics), i64(l.TotalCount), nil
	})
	if err != nil {
		return t, err
	}
	for _, id := range topicIDs {
		topic, err := c.topic(ctx, id)
		if err != nil {
			return t, err
		}
		t.Topics = append(t.Topics, topic)
	}
	err = pages(func(off int64) (int, int64, error) {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		l, resp, err := c.svc.ListDestinationsWithContext(ctx, &eventnotificationsv1.ListDestinationsOptions{InstanceID: in, Limit: core.Int64Ptr(pageSize), Offset: core.Int64Ptr(off)})
		if err != nil {
			return 0, 0, classify("list destinations", "", resp, err)
		}
		for _, d := range l.Destinations {
			t.Destinations = append(t.Destinations, preflight.ENDestination{ID: str(d.ID), Name: str(d.Name), Type: str(d.Type)})
		}
		return len(l.Destinations), i64(l.TotalCount), nil
	})
	if err != nil {
		return t, err
	}
	for i, d := range t.Destinations {
		if d.Type != eventnotificationsv1.DestinationTypeIbmceConst {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		full, resp, err := c.svc.GetDestinationWithContext(ctx, &eventnotificationsv1.GetDestinationOptions{InstanceID: in, ID: core.StringPtr(d.ID)})
		cancel()
		if err != nil {
			return t, classify("get destination", d.ID, resp, err)
		}
		if full.Config != nil {
			if p, ok := full.Config.Params.(*eventnotificationsv1.DestinationConfigOneOf); ok {
				t.Destinations[i].CEType, t.Destinations[i].URL, t.Destinations[i].JobName = str(p.Type), str(p.URL), str(p.JobName)
			}
		}
	}
	return t, nil
}

// topic reads one topic with its rules and subscriptions, and the addresses of its email
// subscriptions.
func (c *Client) topic(ctx context.Context, id string) (preflight.ENTopic, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	x, resp, err := c.svc.GetTopicWithContext(ctx, &eventnotificationsv1.GetTopicOptions{InstanceID: core.StringPtr(c.instanceID), ID: core.StringPtr(id)})
	if err != nil {
		return preflight.ENTopic{}, classify("get topic", id, resp, err)
	}
	t := preflight.ENTopic{ID: str(x.ID), Name: str(x.Name)}
	for _, s := range x.Sources {
		for _, r := range s.Rules {
			rule := preflight.ENRule{SourceID: str(s.ID), Enabled: r.Enabled == nil || *r.Enabled, EventTypeFilter: str(r.EventTypeFilter), NotificationFilter: str(r.NotificationFilter)}
			if r.EventScheduleFilter != nil {
				rule.Schedule = str(r.EventScheduleFilter.Expression)
			}
			t.Rules = append(t.Rules, rule)
		}
	}
	for _, s := range x.Subscriptions {
		sub := preflight.ENSubscription{ID: str(s.ID), Name: str(s.Name), DestinationID: str(s.DestinationID), DestinationType: str(s.DestinationType)}
		if strings.HasPrefix(sub.DestinationType, "smtp") {
			if sub.Invited, sub.Subscribed, err = c.emailAddresses(ctx, sub.ID); err != nil {
				return t, err
			}
		}
		t.Subscriptions = append(t.Subscriptions, sub)
	}
	return t, nil
}

// emailAddresses reads an email subscription's invited and subscribed addresses. It reads the
// answer itself: the SDK's generic subscription model reads them as phone numbers.
func (c *Client) emailAddresses(ctx context.Context, id string) (invited, subscribed []string, err error) {
	b := core.NewRequestBuilder(core.GET).WithContext(ctx)
	if _, err := b.ResolveRequestURL(c.svc.Service.Options.URL, `/v1/instances/{instance_id}/subscriptions/{id}`,
		map[string]string{"instance_id": c.instanceID, "id": id}); err != nil {
		return nil, nil, err
	}
	b.AddHeader("Accept", "application/json")
	req, err := b.Build()
	if err != nil {
		return nil, nil, err
	}
	var raw map[string]json.RawMessage
	resp, err := c.svc.Service.Request(req, &raw)
	if err != nil {
		return nil, nil, classify("get subscription", id, resp, err)
	}
	var attrs struct {
		Invited    []json.RawMessage `json:"invited"`
		Subscribed []json.RawMessage `json:"subscribed"`
	}
	if a, ok := raw["attributes"]; ok {
		if err := json.Unmarshal(a, &attrs); err != nil {
			return nil, nil, fmt.Errorf("notify: subscription %s: attributes: %w", id, err)
		}
	}
	return addresses(attrs.Invited), addresses(attrs.Subscribed), nil
}

// addresses reads a list of addresses given as strings or as {"email": ...} objects.
func addresses(items []json.RawMessage) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			out = append(out, s)
			continue
		}
		var o struct {
			Email string `json:"email"`
		}
		_ = json.Unmarshal(it, &o)
		if o.Email == "" {
			o.Email = "(unnamed)"
		}
		out = append(out, o.Email)
	}
	return out
}

// pages calls list with increasing offsets until it has seen total items (or a short page).
func pages(list func(offset int64) (n int, total int64, err error)) error {
	var off int64
	for range maxPages {
		n, total, err := list(off)
		if err != nil {
			return err
		}
		off += int64(n)
		if n == 0 || off >= total {
			return nil
		}
	}
	return fmt.Errorf("notify: more than %d items", maxPages*pageSize)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func i64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
