-- SEGOB's repatriations of Mexican minors from the US (bulletin section 5) summed by month, by
-- travel condition and age group, with where the figures came from. A month the bulletin
-- published has its sums (0 where no row matched); an unpublished month has no row.
--
-- Two file kinds carry these events: the section 5 minors workbook (aggregates) and the
-- section 5 per-event microdata CSV. The workbook wins a month it carries; the microdata fills
-- the months no workbook carries (figures_from says which). From the microdata only what its
-- fields say for certain is summed: minors are events with EDA (age) under 18, split 0-11 /
-- 12-17. The travel condition (ACOM_REP) is a code whose codebook returnwatch has not seen, so
-- the accompanied / unaccompanied sums stay NULL for microdata months instead of a guess.

with repatriations as (

    select * from {{ ref('stg_segob__mexican_minor_repatriations') }}

),

events as (

    select * from {{ ref('stg_segob__repatriation_events') }}
    where age < 18

),

files as (

    select * from {{ ref('stg_warehouse__files') }}

),

from_workbooks as (

    select
        repatriations.month,
        {{ sum_where('events', "travel_condition = 'unaccompanied'") }} as unaccompanied_minors,
        {{ sum_where('events', "travel_condition = 'unaccompanied' and age_group = '0-11'") }} as unaccompanied_minors_0_11,
        {{ sum_where('events', "travel_condition = 'unaccompanied' and age_group = '12-17'") }} as unaccompanied_minors_12_17,
        {{ sum_where('events', "travel_condition = 'accompanied'") }} as accompanied_minors,
        {{ sum_where('events') }} as all_minors,
        {{ sum_where('events', "age_group = '0-11'") }} as minors_0_11,
        {{ sum_where('events', "age_group = '12-17'") }} as minors_12_17,
        'section_5_minors' as figures_from,
        list_sort(list(distinct repatriations.source_file)) as source_files,
        max(repatriations.vintage) as vintage,
        min(repatriations.first_published_vintage) as first_published_vintage,
        max(repatriations.vintages_with_month) as vintages_with_month,
        bool_or(files.constructed) as figures_constructed
    from repatriations
    left join files on files.source_file = repatriations.source_file
    group by repatriations.month

),

from_microdata as (

    select
        events.month,
        cast(null as bigint) as unaccompanied_minors,
        cast(null as bigint) as unaccompanied_minors_0_11,
        cast(null as bigint) as unaccompanied_minors_12_17,
        cast(null as bigint) as accompanied_minors,
        cast(count(*) as bigint) as all_minors,
        cast(count(*) filter (where events.age <= 11) as bigint) as minors_0_11,
        cast(count(*) filter (where events.age >= 12) as bigint) as minors_12_17,
        'microdata' as figures_from,
        list_sort(list(distinct events.source_file)) as source_files,
        max(events.vintage) as vintage,
        min(events.first_published_vintage) as first_published_vintage,
        max(events.vintages_with_year) as vintages_with_month,
        bool_or(files.constructed) as figures_constructed
    from events
    left join files on files.source_file = events.source_file
    where events.month not in (select month from from_workbooks)
    group by events.month

)

select * from from_workbooks
union all
select * from from_microdata
