-- The profile page lists the values the cleaners refused for one profile.
CREATE INDEX trait_issues_profile ON trait_issues (profile_id, at);
