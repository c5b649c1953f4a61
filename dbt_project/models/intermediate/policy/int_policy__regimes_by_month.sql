-- Per calendar month: the policy regimes in force on any day of the month, and the regimes that
-- began or ended and the events that happened within it (seed `policy_timeline`). A monthly
-- figure cannot tell days apart, so a month with a change carries both regimes: the marts and
-- alerts say so instead of reading the figure as one regime's.

with months as (

    select month, month_end from {{ ref('int_calendar_months') }}

),

timeline as (

    select * from {{ ref('policy_timeline') }}
    where kind in ('regime', 'event')

),

in_force as (

    select
        months.month,
        list(timeline.policy_id order by timeline.starts_on, timeline.policy_id) as policy_ids,
        string_agg(timeline.label, '; ' order by timeline.starts_on, timeline.policy_id)
            as labels,
        list(timeline.url order by timeline.starts_on, timeline.policy_id) as urls
    from months
    inner join timeline
        on timeline.kind = 'regime'
            and timeline.starts_on <= months.month_end
            and coalesce(timeline.ends_on, date '9999-12-31') >= months.month
    group by months.month

),

changes as (

    -- A regime's first day, the day after its last day, or an event, within the month.
    select months.month, change_day, shown_day, text, policy_id
    from months
    inner join (
        select
            starts_on as change_day, starts_on as shown_day,
            strftime(starts_on, '%-d %b %Y') || ': ' || label
            || case when kind = 'regime' then ' (begins)' else '' end as text,
            policy_id
        from timeline
        union all
        select ends_on + 1, ends_on, strftime(ends_on, '%-d %b %Y') || ': last day of ' || label, policy_id
        from timeline
        where kind = 'regime' and ends_on is not null
    ) as dated
        on dated.change_day between months.month and months.month_end

),

changes_by_month as (

    select
        month,
        string_agg(text, '; ' order by shown_day, policy_id) as changes,
        list(distinct policy_id) as policy_ids
    from changes
    group by month

)

select
    months.month,
    coalesce(in_force.policy_ids, []::varchar[]) as policy_regime_ids,
    in_force.labels as policy_regimes_in_force,
    changes_by_month.changes as policy_changes_in_month,
    changes_by_month.changes is not null as policy_changed_in_month,
    coalesce(in_force.urls, []::varchar[]) as policy_regime_urls
from months
left join in_force on in_force.month = months.month
left join changes_by_month on changes_by_month.month = months.month
