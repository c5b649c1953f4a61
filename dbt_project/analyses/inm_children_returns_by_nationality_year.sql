-- Mexico's assisted returns of foreign children by nationality and calendar year (bulletin
-- table 3.2.4), with the year's minors presented (table 3.1.3, all nationalities) for scale:
-- e.g. how many Guatemalan, Honduran and Salvadoran children Mexico returned each year.

with yearly as (

    select
        calendar_year,
        nationality_scope,
        nationality_key,
        nationality_name_en,
        sum(minors_returned) as minors_returned,
        sum(minors_presented) as minors_presented,
        sum(persons_returned) as persons_returned,
        count(distinct month) as months
    from {{ ref('inm_minor_returns_monthly') }}
    group by all

)

select
    calendar_year,
    nationality_key,
    nationality_name_en,
    minors_returned,
    round(minors_returned / nullif(persons_returned, 0), 3) as minors_share_of_returns,
    minors_presented as minors_presented_all_nationalities,
    months
from yearly
where nationality_scope = 'all_nationalities'
    or nationality_key in ('GTM', 'HND', 'SLV')
order by calendar_year, nationality_scope, minors_returned desc
