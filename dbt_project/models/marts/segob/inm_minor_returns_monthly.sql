-- Mexico's returns of foreign minors (bulletin table 3.2.4, assisted returns of children) vs
-- minors presented to its migration authority (table 3.1.3), by month; by nationality where
-- the bulletin publishes one (3.1.3 has no nationality, so per nationality the denominator is
-- all ages presented, table 3.1.1). One `all_nationalities` row per month plus one row per
-- nationality: filter on nationality_scope before summing.

with by_nationality as (

    select * from {{ ref('int_segob__nationality_monthly') }}

),

minors_presented as (

    select * from {{ ref('int_segob__minors_presented_monthly') }}

),

totals as (

    select
        month,
        'all_nationalities' as nationality_scope,
        'ALL' as nationality_key,
        cast(null as varchar) as nationality_iso3,
        'Todas las nacionalidades' as nationality_segob,
        'All nationalities' as nationality_name_en,
        cast(null as varchar) as nationality_region,
        -- Every row of a month shares the month's publication state, so sum() is NULL exactly
        -- when the table has not published the month.
        cast(sum(persons_presented) as bigint) as persons_presented,
        cast(sum(persons_returned) as bigint) as persons_returned,
        cast(sum(deportations) as bigint) as deportations,
        cast(sum(assisted_returns) as bigint) as assisted_returns,
        cast(sum(minors_returned) as bigint) as minors_returned,
        any_value(presented_vintage) as presented_vintage,
        any_value(presented_source_files) as presented_source_files,
        any_value(returns_vintage) as returns_vintage,
        any_value(returns_source_files) as returns_source_files
    from by_nationality
    group by month

),

nationalities as (

    select
        month,
        'nationality' as nationality_scope,
        nationality_key,
        nationality_iso3,
        nationality_segob,
        nationality_name_en,
        nationality_region,
        persons_presented,
        persons_returned,
        deportations,
        assisted_returns,
        minors_returned,
        presented_vintage,
        presented_source_files,
        returns_vintage,
        returns_source_files
    from by_nationality

),

minors_only_months as (

    -- Months only table 3.1.3 has published (no 3.1.1 or 3.2.4 workbook for them yet): their
    -- all-nationalities row still carries the minors presented.
    select
        month,
        'all_nationalities' as nationality_scope,
        'ALL' as nationality_key,
        cast(null as varchar) as nationality_iso3,
        'Todas las nacionalidades' as nationality_segob,
        'All nationalities' as nationality_name_en,
        cast(null as varchar) as nationality_region,
        cast(null as bigint) as persons_presented,
        cast(null as bigint) as persons_returned,
        cast(null as bigint) as deportations,
        cast(null as bigint) as assisted_returns,
        cast(null as bigint) as minors_returned,
        cast(null as date) as presented_vintage,
        cast(null as varchar[]) as presented_source_files,
        cast(null as date) as returns_vintage,
        cast(null as varchar[]) as returns_source_files
    from minors_presented
    where month not in (select month from by_nationality)

),

all_rows as (

    select * from totals
    union all
    select * from minors_only_months
    union all
    select * from nationalities

),

months as (

    select month, fiscal_year, calendar_year from {{ ref('int_calendar_months') }}

),

joined as (

    select
        all_rows.month,
        months.calendar_year,
        months.fiscal_year,
        all_rows.nationality_scope,
        all_rows.nationality_key,
        all_rows.nationality_iso3,
        all_rows.nationality_segob,
        all_rows.nationality_name_en,
        all_rows.nationality_region,
        -- Minors presented are published for all nationalities together only (table 3.1.3).
        case when all_rows.nationality_scope = 'all_nationalities'
                then minors_presented.minors_presented
        end as minors_presented,
        case when all_rows.nationality_scope = 'all_nationalities'
                then minors_presented.minors_presented_0_11_unaccompanied
        end as minors_presented_0_11_unaccompanied,
        all_rows.minors_returned,
        all_rows.persons_presented,
        all_rows.persons_returned,
        all_rows.deportations,
        all_rows.assisted_returns,
        all_rows.presented_vintage,
        all_rows.presented_source_files,
        case when all_rows.nationality_scope = 'all_nationalities'
                then minors_presented.vintage
        end as minors_presented_vintage,
        case when all_rows.nationality_scope = 'all_nationalities'
                then minors_presented.source_files
        end as minors_presented_source_files,
        all_rows.returns_vintage,
        all_rows.returns_source_files
    from all_rows
    left join minors_presented on minors_presented.month = all_rows.month
    left join months on months.month = all_rows.month

)

select
    month,
    calendar_year,
    fiscal_year,
    nationality_scope,
    nationality_key,
    nationality_iso3,
    nationality_segob,
    nationality_name_en,
    nationality_region,
    minors_presented,
    minors_presented_0_11_unaccompanied,
    minors_returned,
    minors_returned::double / nullif(minors_presented, 0) as minor_return_rate,
    minors_returned::double / nullif(minors_presented, 0) > 1 as minor_return_rate_above_one,
    persons_presented,
    persons_returned,
    deportations,
    assisted_returns,
    minors_returned::double / nullif(persons_presented, 0) as minors_returned_per_person_presented,
    minors_returned::double / nullif(persons_returned, 0) as minors_share_of_returns,
    'events, not people (SEGOB/UPM bulletin; calendar months)' as counting_unit,
    presented_vintage,
    presented_source_files,
    minors_presented_vintage,
    minors_presented_source_files,
    returns_vintage,
    returns_source_files
from joined
