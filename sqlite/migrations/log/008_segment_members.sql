-- The last event of each profile in each segment: membership as the history
-- recorded it, compared with the evaluation at start.
CREATE INDEX segment_events_member ON segment_events (segment_id, profile_id, id);
