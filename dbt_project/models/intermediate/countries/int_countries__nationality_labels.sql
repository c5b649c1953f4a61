-- Every nationality label the publishers print, harmonised to ISO3 and an English name:
-- CBP's upper-case citizenships through the countries seed, SEGOB's Spanish labels through the
-- ISO3 its parser gave them (from the same mapping table the seed was generated from).

with countries as (

    select * from {{ ref('countries') }}

),

cbp_labels as (

    -- Every CBP layout the marts use (int_cbp__encounters): AOR, state and SBO citizenships.
    select distinct citizenship as label_published
    from {{ ref('int_cbp__encounters') }}

),

segob_labels as (

    select nationality_segob as label_published, nationality_iso3 as parser_iso3
    from {{ ref('stg_segob__presented_by_nationality') }}
    union
    select nationality_segob, nationality_iso3
    from {{ ref('stg_segob__returns_by_nationality') }}

),

cbp as (

    select
        'cbp' as publisher,
        cbp_labels.label_published,
        countries.iso3 as nationality_iso3,
        case
            when countries.iso3 is not null then 'countries seed (cbp_citizenship)'
            when cbp_labels.label_published = 'OTHER' then 'group of countries'
            else 'unmatched'
        end as matched_by
    from cbp_labels
    left join countries on countries.cbp_citizenship = cbp_labels.label_published

),

segob as (

    select
        'segob' as publisher,
        label_published,
        -- One label, one code: should two editions give one label different codes, the
        -- greatest wins and the test on this model's key fails loudly.
        max(parser_iso3) as nationality_iso3,
        case
            when max(parser_iso3) is not null then 'SEGOB parser (sources/segob_bulletin_monthly COUNTRIES)'
            else 'group of countries or unknown label'
        end as matched_by
    from segob_labels
    group by label_published

),

harmonised as (

    select * from cbp
    union all
    select * from segob

)

select
    harmonised.publisher,
    harmonised.label_published,
    harmonised.nationality_iso3,
    coalesce(countries.name_en, harmonised.label_published) as nationality_name_en,
    countries.segob_continent,
    countries.segob_region,
    harmonised.matched_by
from harmonised
left join countries on countries.iso3 = harmonised.nationality_iso3
