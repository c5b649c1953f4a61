-- SEGOB's repatriations of Mexican minors from the US (bulletin section 5) summed by month, by
-- travel condition and age group, with where the figures came from. A month the bulletin
-- published has its sums (0 where no row matched); an unpublished month has no row.

with repatriations as (

    select * from {{ ref('stg_segob__mexican_minor_repatriations') }}

),

files as (

    select * from {{ ref('stg_warehouse__files') }}

)

select
    repatriations.month,
    {{ sum_where('events', "travel_condition = 'unaccompanied'") }} as unaccompanied_minors,
    {{ sum_where('events', "travel_condition = 'unaccompanied' and age_group = '0-11'") }} as unaccompanied_minors_0_11,
    {{ sum_where('events', "travel_condition = 'unaccompanied' and age_group = '12-17'") }} as unaccompanied_minors_12_17,
    {{ sum_where('events', "travel_condition = 'accompanied'") }} as accompanied_minors,
    {{ sum_where('events') }} as all_minors,
    list_sort(list(distinct repatriations.source_file)) as source_files,
    max(repatriations.vintage) as vintage,
    min(repatriations.first_published_vintage) as first_published_vintage,
    max(repatriations.vintages_with_month) as vintages_with_month,
    bool_or(files.constructed) as figures_constructed
from repatriations
left join files on files.source_file = repatriations.source_file
group by repatriations.month
