-- Foreigners presented (table 3.1.1) and returned (table 3.2.4) by Mexico, by nationality and
-- month, on one grain. A nationality a published month's workbook does not list had no events
-- (0); a month the table has not published is NULL for that table's columns.

with presented as (

    select
        *,
        coalesce(nationality_iso3, 'SEGOB:' || nationality_segob) as nationality_key
    from {{ ref('stg_segob__presented_by_nationality') }}

),

returns as (

    select
        *,
        coalesce(nationality_iso3, 'SEGOB:' || nationality_segob) as nationality_key
    from {{ ref('stg_segob__returns_by_nationality') }}

),

presented_by_nationality as (

    select
        month,
        nationality_key,
        any_value(nationality_iso3) as nationality_iso3,
        min(nationality_segob) as nationality_segob,
        {{ sum_where('events') }} as persons_presented
    from presented
    group by month, nationality_key

),

returns_by_nationality as (

    select
        month,
        nationality_key,
        any_value(nationality_iso3) as nationality_iso3,
        min(nationality_segob) as nationality_segob,
        {{ sum_where('events') }} as persons_returned,
        {{ sum_where('events', "return_type = 'deportation'") }} as deportations,
        {{ sum_where('events', "return_type = 'assisted_return'") }} as assisted_returns,
        {{ sum_where('events', "return_type = 'assisted_return_children'") }} as minors_returned
    from returns
    group by month, nationality_key

),

presented_months as (

    select
        month,
        max(vintage) as vintage,
        list_sort(list(distinct source_file)) as source_files
    from presented
    group by month

),

returns_months as (

    select
        month,
        max(vintage) as vintage,
        list_sort(list(distinct source_file)) as source_files
    from returns
    group by month

),

nationalities as (

    select month, nationality_key from presented_by_nationality
    union
    select month, nationality_key from returns_by_nationality

),

countries as (

    select * from {{ ref('countries') }}

),

joined as (

    select
        nationalities.month,
        nationalities.nationality_key,
        coalesce(presented_by_nationality.nationality_iso3, returns_by_nationality.nationality_iso3)
            as nationality_iso3,
        coalesce(presented_by_nationality.nationality_segob, returns_by_nationality.nationality_segob)
            as nationality_segob,
        case when presented_months.month is not null
                then coalesce(presented_by_nationality.persons_presented, 0)
        end as persons_presented,
        case when returns_months.month is not null
                then coalesce(returns_by_nationality.persons_returned, 0)
        end as persons_returned,
        case when returns_months.month is not null
                then coalesce(returns_by_nationality.deportations, 0)
        end as deportations,
        case when returns_months.month is not null
                then coalesce(returns_by_nationality.assisted_returns, 0)
        end as assisted_returns,
        case when returns_months.month is not null
                then coalesce(returns_by_nationality.minors_returned, 0)
        end as minors_returned,
        presented_months.vintage as presented_vintage,
        presented_months.source_files as presented_source_files,
        returns_months.vintage as returns_vintage,
        returns_months.source_files as returns_source_files
    from nationalities
    left join presented_by_nationality
        on presented_by_nationality.month = nationalities.month
            and presented_by_nationality.nationality_key = nationalities.nationality_key
    left join returns_by_nationality
        on returns_by_nationality.month = nationalities.month
            and returns_by_nationality.nationality_key = nationalities.nationality_key
    left join presented_months on presented_months.month = nationalities.month
    left join returns_months on returns_months.month = nationalities.month

)

select
    joined.month,
    joined.nationality_key,
    joined.nationality_iso3,
    coalesce(countries.segob_country, joined.nationality_segob) as nationality_segob,
    coalesce(countries.name_en, joined.nationality_segob) as nationality_name_en,
    coalesce(countries.segob_region, countries.segob_continent) as nationality_region,
    joined.persons_presented,
    joined.persons_returned,
    joined.deportations,
    joined.assisted_returns,
    joined.minors_returned,
    joined.presented_vintage,
    joined.presented_source_files,
    joined.returns_vintage,
    joined.returns_source_files
from joined
left join countries on countries.iso3 = joined.nationality_iso3
